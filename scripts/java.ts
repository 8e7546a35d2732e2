// How the project's tools start a JVM (the HAPI FHIR peer, the HL7 validator): they live for one run
// of tests, a demo or a check, so starting quickly matters more than peak speed. The C1 compiler alone
// and the serial collector took a third off their wall time and CPU on a 2-core machine (HAPI's start
// and the validator's package loading are mostly class loading and first-time code).
export const shortLivedJvm = ['-XX:TieredStopAtLevel=1', '-XX:+UseSerialGC'];
