// A HAPI FHIR JPA server (R4, H2 in memory) playing a referring hospital's FHIR server in tests and the demo.
// Started as `java -Xmx512m -jar target/hapi-peer.jar --server.port=PORT`; it listens on 127.0.0.1 only.
package peer.hapi;

import ca.uhn.fhir.batch2.jobs.config.Batch2JobsConfig;
import ca.uhn.fhir.jpa.batch2.JpaBatch2Config;
import ca.uhn.fhir.jpa.config.r4.JpaR4Config;
import ca.uhn.fhir.jpa.subscription.channel.config.SubscriptionChannelConfig;
import ca.uhn.fhir.rest.server.RestfulServer;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.web.servlet.ServletRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Import;

@SpringBootApplication
// Batch2 (reindexing and the like, which JPA storage needs) runs its jobs over the in-memory channel broker.
@Import({JpaR4Config.class, JpaBatch2Config.class, Batch2JobsConfig.class, SubscriptionChannelConfig.class, PeerConfig.class})
public class HapiPeer {

	public static void main(String[] args) {
		SpringApplication.run(HapiPeer.class, args);
	}

	/** The FHIR base is /fhir, as in hapi-fhir-jpaserver-starter. */
	@Bean
	public ServletRegistrationBean<RestfulServer> fhirServlet(RestfulServer server) {
		ServletRegistrationBean<RestfulServer> registration = new ServletRegistrationBean<>(server, "/fhir/*");
		registration.setLoadOnStartup(1);
		return registration;
	}
}
