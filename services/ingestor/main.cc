// audit-ingestor: consumes business events from Kafka into the PostgreSQL audit store.
// Configuration: flags or environment variables (docs/ARCHITECTURE.md, "Configuration").
#include "services/ingestor/ingestor_main.h"

int main(int argc, char** argv) { return audit::ingestor::IngestorMain(argc, argv, {}); }
