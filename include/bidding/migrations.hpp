#pragma once
#include <string>

namespace bidding {

struct migration_report {
    int applied{0};      // migrations applied by this run
    int version{0};      // schema version after the run
};

// Applies the versioned migrations in one transaction under an advisory lock, so that two
// processes migrating at once serialize; idempotent; adopts Django's tables when they already
// exist in the expected shape (and refuses, naming the column, when they do not).
migration_report run_migrations(const std::string& conninfo);

}  // namespace bidding
