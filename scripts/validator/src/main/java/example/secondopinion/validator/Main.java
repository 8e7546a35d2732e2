// The HL7 validator (HAPI FHIR's FhirInstanceValidator over the R4 core definitions), offline, with the
// conformance resources of profiles/ loaded: an independent oracle for what the service publishes and emits.
//
//   java -jar target/hl7-validator.jar --ig ../../profiles [--stdin] [--snapshots] [file-or-dir ...]
//
// Prints one JSON line per resource ({"file", "resourceType", "issues": [{severity, location, message,
// messageId}]}) and a closing {"summary"} line. With --stdin it stays up and answers one line per input
// line, which is a path or a resource's JSON, so that a test pays the JVM's start-up once. With
// --snapshots (or the input line --snapshots) it prints one line, {"snapshots": [{"url",
// "structureDefinition"}]}: each StructureDefinition of profiles/ with the snapshot generated from its
// differential.
package example.secondopinion.validator;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

public final class Main {
  private Main() {}

  public static void main(String[] args) throws IOException {
    Path ig = null;
    boolean stdin = false;
    boolean snapshots = false;
    List<Path> targets = new ArrayList<>();
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--ig" -> ig = Path.of(args[++i]);
        case "--stdin" -> stdin = true;
        case "--snapshots" -> snapshots = true;
        default -> targets.add(Path.of(args[i]));
      }
    }
    if (ig == null) {
      System.err.println("usage: --ig <profiles dir> [--stdin] [--snapshots] [file-or-dir ...]");
      System.exit(2);
    }
    PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
    Oracle oracle = new Oracle(ig);
    if (snapshots) {
      oracle.printSnapshots(out);
      return;
    }
    Summary summary = new Summary();
    for (Path target : targets) {
      for (Path file : jsonFiles(target)) {
        summary.add(oracle.validateFile(file, out));
      }
    }
    if (stdin) {
      out.println("{\"ready\":true}");
      BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
      for (String line = in.readLine(); line != null; line = in.readLine()) {
        if (line.isBlank()) {
          continue;
        }
        if (line.strip().equals("--snapshots")) {
          oracle.printSnapshots(out);
          continue;
        }
        summary.add(line.stripLeading().startsWith("{") ? oracle.validate("-", line, out) : oracle.validateFile(Path.of(line.strip()), out));
      }
    }
    out.println(summary.json());
  }

  /** The .json files under a path, in name order (a file is taken as it is). */
  private static List<Path> jsonFiles(Path target) throws IOException {
    if (!Files.isDirectory(target)) {
      return List.of(target);
    }
    try (Stream<Path> walk = Files.walk(target)) {
      return walk.filter(p -> p.toString().endsWith(".json") && Files.isRegularFile(p)).sorted().toList();
    }
  }

  static final class Summary {
    int files;
    int errors;
    int warnings;

    void add(int[] counts) {
      if (counts == null) {
        return;
      }
      files++;
      errors += counts[0];
      warnings += counts[1];
    }

    String json() {
      return "{\"summary\":{\"files\":" + files + ",\"errors\":" + errors + ",\"warnings\":" + warnings + "}}";
    }
  }
}
