// The validator itself: FHIR R4's definitions, the common code systems, an in-memory terminology
// service, snapshot generation, and profiles/ loaded from their differentials (a committed snapshot is
// set aside, so what is checked is always what the differential says).
package example.secondopinion.validator;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.DefaultProfileValidationSupport;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.context.support.ValidationSupportContext;
import ca.uhn.fhir.parser.IParser;
import ca.uhn.fhir.parser.LenientErrorHandler;
import ca.uhn.fhir.validation.FhirValidator;
import ca.uhn.fhir.validation.ResultSeverityEnum;
import ca.uhn.fhir.validation.SingleValidationMessage;
import ca.uhn.fhir.validation.ValidationResult;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.hl7.fhir.common.hapi.validation.support.CommonCodeSystemsTerminologyService;
import org.hl7.fhir.common.hapi.validation.support.InMemoryTerminologyServerValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.PrePopulatedValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.SnapshotGeneratingValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.UnknownCodeSystemWarningValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.ValidationSupportChain;
import org.hl7.fhir.common.hapi.validation.validator.FhirInstanceValidator;
import org.hl7.fhir.instance.model.api.IBaseResource;
import org.hl7.fhir.r4.model.StructureDefinition;

final class Oracle {
  private final FhirContext ctx = FhirContext.forR4();
  private final IParser parser = ctx.newJsonParser();
  /** Reads a resource's type even when a value is wrong (the validator reports that value). */
  private final IParser lenient = ctx.newJsonParser().setParserErrorHandler(new LenientErrorHandler(false).setErrorOnInvalidValue(false));
  private final List<StructureDefinition> ownStructures = new ArrayList<>();
  private final ValidationSupportChain chain;
  private final FhirValidator validator;

  Oracle(Path ig) throws IOException {
    // The instance validator reads the JSON itself; HAPI's model parser must not refuse a wrong code first.
    ctx.setParserErrorHandler(new LenientErrorHandler(false).setErrorOnInvalidValue(false));
    PrePopulatedValidationSupport own = new PrePopulatedValidationSupport(ctx);
    try (Stream<Path> files = Files.list(ig)) {
      for (Path file : files.filter(p -> p.toString().endsWith(".json") && !p.getFileName().toString().equals("package.json")).sorted().toList()) {
        IBaseResource resource = parser.parseResource(Files.readString(file, StandardCharsets.UTF_8));
        if (resource instanceof StructureDefinition sd) {
          sd.setSnapshot(null);
          ownStructures.add(sd);
        }
        own.addResource(resource);
      }
    }
    // SNOMED CT, LOINC, ICD-10 and the like cannot be checked offline: a code from them is a warning.
    UnknownCodeSystemWarningValidationSupport unknownSystems = new UnknownCodeSystemWarningValidationSupport(ctx);
    unknownSystems.setNonExistentCodeSystemSeverity(IValidationSupport.IssueSeverity.WARNING);
    chain = new ValidationSupportChain(
        new DefaultProfileValidationSupport(ctx),
        own,
        new CommonCodeSystemsTerminologyService(ctx),
        new InMemoryTerminologyServerValidationSupport(ctx),
        new SnapshotGeneratingValidationSupport(ctx),
        unknownSystems);
    FhirInstanceValidator module = new FhirInstanceValidator(chain);
    validator = ctx.newValidator().registerValidatorModule(module);
  }

  /** Validates one file; null when it holds no FHIR resource (package.json, expectations). */
  int[] validateFile(Path file, PrintStream out) throws IOException {
    String text = Files.readString(file, StandardCharsets.UTF_8);
    if (!text.contains("\"resourceType\"")) {
      return null;
    }
    return validate(file.toString(), text, out);
  }

  /** Prints the verdict on one resource as a JSON line; returns {errors, warnings}. */
  int[] validate(String name, String json, PrintStream out) {
    List<String> issues = new ArrayList<>();
    int errors = 0;
    int warnings = 0;
    String type = "";
    try {
      ValidationResult result = validator.validateWithResult(json);
      type = lenient.parseResource(json).fhirType();
      for (SingleValidationMessage m : result.getMessages()) {
        ResultSeverityEnum severity = offlineOnly(m) ? ResultSeverityEnum.WARNING : m.getSeverity();
        if (severity == ResultSeverityEnum.ERROR || severity == ResultSeverityEnum.FATAL) {
          errors++;
        } else if (severity == ResultSeverityEnum.WARNING) {
          warnings++;
        } else {
          continue;
        }
        issues.add(issue(severity.getCode(), m.getLocationString(), m.getMessage(), m.getMessageId()));
      }
    } catch (RuntimeException e) {
      errors++;
      issues.add(issue("fatal", "", String.valueOf(e.getMessage()), e.getClass().getSimpleName()));
    }
    out.println("{\"file\":" + Json.quote(name) + ",\"resourceType\":" + Json.quote(type) + ",\"issues\":[" + String.join(",", issues) + "]}");
    return new int[] {errors, warnings};
  }

  /** One line: each StructureDefinition of profiles/ with the snapshot HL7's generator makes of its differential. */
  void printSnapshots(PrintStream out) {
    ValidationSupportContext context = new ValidationSupportContext(chain);
    List<String> generated = new ArrayList<>();
    for (StructureDefinition sd : ownStructures) {
      IBaseResource snapshot = chain.generateSnapshot(context, sd.copy(), sd.getUrl(), null, sd.getName());
      generated.add("{\"url\":" + Json.quote(sd.getUrl()) + ",\"structureDefinition\":" + parser.encodeResourceToString(snapshot) + "}");
    }
    out.println("{\"snapshots\":[" + String.join(",", generated) + "]}");
  }

  /**
   * The StructureDefinition check of an extension also compares its elements with other FHIR
   * versions' core packages, which it fetches into a package cache: offline, that fetch fails and is
   * reported as a snapshot error, though the snapshot itself is generated (see --snapshots).
   */
  private static boolean offlineOnly(SingleValidationMessage m) {
    return "ERROR_GENERATING_SNAPSHOT".equals(m.getMessageId()) && m.getMessage().contains("Unable to resolve package id hl7.fhir.r4.core#null");
  }

  private static String issue(String severity, String location, String message, String messageId) {
    return "{\"severity\":" + Json.quote(severity) + ",\"location\":" + Json.quote(location) + ",\"message\":" + Json.quote(message) + ",\"messageId\":" + Json.quote(messageId) + "}";
  }
}
