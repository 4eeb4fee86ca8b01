package net.kapnet.fhirvalidator;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.DefaultProfileValidationSupport;
import ca.uhn.fhir.parser.IParser;
import ca.uhn.fhir.validation.FhirValidator;
import ca.uhn.fhir.validation.ResultSeverityEnum;
import ca.uhn.fhir.validation.SingleValidationMessage;
import ca.uhn.fhir.validation.ValidationResult;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.hl7.fhir.common.hapi.validation.support.CommonCodeSystemsTerminologyService;
import org.hl7.fhir.common.hapi.validation.support.InMemoryTerminologyServerValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.PrePopulatedValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.SnapshotGeneratingValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.ValidationSupportChain;
import org.hl7.fhir.common.hapi.validation.validator.FhirInstanceValidator;
import org.hl7.fhir.instance.model.api.IBaseResource;
import org.hl7.fhir.r4.model.Bundle;
import org.hl7.fhir.r4.model.CodeSystem;
import org.hl7.fhir.r4.model.Resource;
import org.hl7.fhir.r4.model.StructureDefinition;
import org.hl7.fhir.r4.model.ValueSet;

/**
 * Validates FHIR R4 JSON resources with HAPI FHIR's instance validator, offline: the R4 core definitions that
 * hapi-fhir-validation-resources-r4 bundles, in-memory terminology (the code systems and value sets among those
 * definitions, plus UCUM, BCP-47, ISO 3166, MIME types and currencies), and any conformance resources given with
 * --conformance (kapnet's CodeSystems). No terminology server is asked: a code of a system that is not present
 * (LOINC, SNOMED CT, RxNorm) is not checked against that system.
 *
 * <p>Usage: {@code java -jar fhir-validator.jar [--conformance PATH]... [--threads N] PATH...} where each PATH is a
 * JSON file or a directory of them (searched recursively, *.json). A conformance file may hold one resource or a
 * Bundle of them.
 *
 * <p>Prints one JSON object per line on standard output: one per issue
 * ({"file", "resource", "severity", "location", "message", "messageId"}), then a summary
 * ({"summary": true, "resources", "fatal", "error", "warning", "information", "seconds"}). The exit status is 1 when
 * any issue is an error or fatal, 2 when the arguments or files are unusable, else 0.
 */
public final class Main {
  private Main() {}

  public static void main(String[] args) throws Exception {
    Locale.setDefault(Locale.ENGLISH);
    long started = System.nanoTime();
    List<Path> conformance = new ArrayList<>();
    List<Path> inputs = new ArrayList<>();
    int threads = Math.max(1, Math.min(4, Runtime.getRuntime().availableProcessors()));
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--conformance" -> conformance.add(Path.of(argument(args, ++i)));
        case "--threads" -> threads = Integer.parseInt(argument(args, ++i));
        case "-h", "--help" -> {
          System.out.println("usage: fhir-validator [--conformance PATH]... [--threads N] PATH...");
          return;
        }
        default -> inputs.add(Path.of(args[i]));
      }
    }
    List<Path> files = jsonFiles(inputs);
    if (files.isEmpty()) {
      System.err.println("fhir-validator: no JSON resources given");
      System.exit(2);
    }

    FhirContext context = FhirContext.forR4();
    IParser parser = context.newJsonParser();
    PrePopulatedValidationSupport ours = new PrePopulatedValidationSupport(context);
    for (Path file : jsonFiles(conformance)) {
      addConformance(ours, parser.parseResource(Files.readString(file, StandardCharsets.UTF_8)));
    }
    ValidationSupportChain chain =
        new ValidationSupportChain(
            ours,
            new DefaultProfileValidationSupport(context),
            new CommonCodeSystemsTerminologyService(context),
            new InMemoryTerminologyServerValidationSupport(context),
            new SnapshotGeneratingValidationSupport(context));
    FhirInstanceValidator instanceValidator = new FhirInstanceValidator(chain);
    FhirValidator validator = context.newValidator();
    validator.registerValidatorModule(instanceValidator);

    // The first validation loads the core definitions, which the others then share: it runs alone.
    List<List<Issue>> reports = new ArrayList<>();
    reports.add(validate(validator, files.get(0)));
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    List<Future<List<Issue>>> pending = new ArrayList<>();
    for (Path file : files.subList(1, files.size())) {
      pending.add(pool.submit(() -> validate(validator, file)));
    }
    pool.shutdown();
    for (Future<List<Issue>> report : pending) {
      reports.add(report.get());
    }

    Map<ResultSeverityEnum, Integer> counts = new EnumMap<>(ResultSeverityEnum.class);
    for (ResultSeverityEnum severity : ResultSeverityEnum.values()) {
      counts.put(severity, 0);
    }
    PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
    for (List<Issue> report : reports) {
      for (Issue issue : report) {
        counts.merge(issue.severity(), 1, Integer::sum);
        out.println(issue.json());
      }
    }
    double seconds = (System.nanoTime() - started) / 1e9;
    out.printf(
        Locale.ROOT,
        "{\"summary\":true,\"resources\":%d,\"fatal\":%d,\"error\":%d,\"warning\":%d,\"information\":%d,"
            + "\"seconds\":%.1f}%n",
        files.size(),
        counts.get(ResultSeverityEnum.FATAL),
        counts.get(ResultSeverityEnum.ERROR),
        counts.get(ResultSeverityEnum.WARNING),
        counts.get(ResultSeverityEnum.INFORMATION),
        seconds);
    out.flush();
    boolean failed = counts.get(ResultSeverityEnum.FATAL) + counts.get(ResultSeverityEnum.ERROR) > 0;
    System.exit(failed ? 1 : 0);
  }

  private static String argument(String[] args, int i) {
    if (i >= args.length) {
      System.err.println("fhir-validator: " + args[i - 1] + " needs a value");
      System.exit(2);
    }
    return args[i];
  }

  /** The JSON files named, and those under the directories named, each list in path order. */
  private static List<Path> jsonFiles(List<Path> paths) throws IOException {
    List<Path> files = new ArrayList<>();
    for (Path path : paths) {
      if (Files.isDirectory(path)) {
        try (Stream<Path> walk = Files.walk(path)) {
          files.addAll(
              walk.filter(p -> Files.isRegularFile(p) && p.toString().endsWith(".json"))
                  .sorted()
                  .collect(Collectors.toList()));
        }
      } else if (Files.isRegularFile(path)) {
        files.add(path);
      } else {
        System.err.println("fhir-validator: no such file or directory: " + path);
        System.exit(2);
      }
    }
    return files;
  }

  private static void addConformance(PrePopulatedValidationSupport support, IBaseResource resource) {
    if (resource instanceof Bundle bundle) {
      for (Bundle.BundleEntryComponent entry : bundle.getEntry()) {
        addConformance(support, entry.getResource());
      }
    } else if (resource instanceof CodeSystem
        || resource instanceof ValueSet
        || resource instanceof StructureDefinition) {
      support.addResource(resource);
    } else {
      String kind = resource == null ? "nothing" : ((Resource) resource).getResourceType().name();
      System.err.println("fhir-validator: not a conformance resource: " + kind);
      System.exit(2);
    }
  }

  /** One issue the validator found in one file. */
  private record Issue(Path file, String resource, SingleValidationMessage message) {
    ResultSeverityEnum severity() {
      return message.getSeverity();
    }

    String json() {
      return "{"
          + String.join(
              ",",
              field("file", file.toString()),
              field("resource", resource),
              field("severity", message.getSeverity().getCode()),
              field("location", message.getLocationString()),
              field("message", message.getMessage()),
              field("messageId", message.getMessageId()))
          + "}";
    }
  }

  private static List<Issue> validate(FhirValidator validator, Path file) throws IOException {
    String text = Files.readString(file, StandardCharsets.UTF_8);
    String name = resourceName(text, file);
    List<Issue> issues = new ArrayList<>();
    try {
      ValidationResult result = validator.validateWithResult(text);
      for (SingleValidationMessage message : result.getMessages()) {
        issues.add(new Issue(file, name, message));
      }
    } catch (RuntimeException failure) {
      // The validator gave up on this resource: that is the worst of issues, and the other files go on.
      SingleValidationMessage message = new SingleValidationMessage();
      message.setSeverity(ResultSeverityEnum.FATAL);
      message.setLocationString(name);
      message.setMessage("the validator failed: " + failure);
      issues.add(new Issue(file, name, message));
    }
    return issues;
  }

  /** Type/id of the resource in the file, or the file's name when it is no JSON object (the validator says why). */
  private static String resourceName(String text, Path file) {
    try {
      JsonObject resource = JsonParser.parseString(text).getAsJsonObject();
      String type = resource.has("resourceType") ? resource.get("resourceType").getAsString() : null;
      String id = resource.has("id") ? resource.get("id").getAsString() : null;
      if (type == null) {
        return file.getFileName().toString();
      }
      return id == null ? type : type + "/" + id;
    } catch (RuntimeException notAnObject) {
      return file.getFileName().toString();
    }
  }

  private static String field(String name, String value) {
    return "\"" + name + "\":" + (value == null ? "null" : quote(value));
  }

  private static String quote(String value) {
    StringBuilder quoted = new StringBuilder("\"");
    for (char c : value.toCharArray()) {
      switch (c) {
        case '"' -> quoted.append("\\\"");
        case '\\' -> quoted.append("\\\\");
        case '\n' -> quoted.append("\\n");
        case '\r' -> quoted.append("\\r");
        case '\t' -> quoted.append("\\t");
        default -> {
          if (c < 0x20) {
            quoted.append(String.format("\\u%04x", (int) c));
          } else {
            quoted.append(c);
          }
        }
      }
    }
    return quoted.append('"').toString();
  }
}
