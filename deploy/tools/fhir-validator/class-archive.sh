#!/usr/bin/env bash
# The HL7 validator's class-data archive: a JVM maps the classes one validation loaded, already parsed and verified,
# instead of loading them again (2026-12-06: a validation of one resource 10.5 -> 8.2 s of CPU, 9.6 -> 7.3 s). Made
# again when the jar is newer or this JDK does not map it. A JVM ignores an archive that is missing or was made for
# another JDK or jar (-Xshare:auto), so it only ever saves time. tests/test_fhir_hl7_validator.py passes it.
set -euo pipefail
cd "$(dirname "$0")"
jar="$(pwd -P)/target/fhir-validator.jar"  # the absolute path the tests run: an archive holds its class path
archive="$(pwd -P)/target/fhir-validator.jsa"
flags=(-XX:+UseSerialGC -XX:TieredStopAtLevel=1)  # the tests' flags
maps() { java -XX:SharedArchiveFile="$1" -Xshare:on "${flags[@]}" -cp "$jar" -version > /dev/null 2>&1; }
if [ -f "$archive" ] && [ "$archive" -nt "$jar" ] && maps "$archive"; then
  exit 0
fi
rm -f "$archive"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir "$scratch/conformance"
java -XX:ArchiveClassesAtExit="$scratch/archive.jsa" "${flags[@]}" -jar "$jar" --conformance "$scratch/conformance" warm-up > "$scratch/out" 2>&1 || { cat "$scratch/out" >&2; exit 1; }
maps "$scratch/archive.jsa" || { echo "class-archive.sh: the JVM made no usable archive" >&2; exit 1; }
mv "$scratch/archive.jsa" "$archive"
