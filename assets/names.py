"""Asset keys, check names and tags as constants (referenced by sensors, schedules, the CLI and tests)."""

INTAKE_FILE = "intake_file"
CURRENT_SNAPSHOTS = "current_snapshots"
VALIDATED_FILE = "validated_file"
PROTECTED_FILE = "protected_file"
RAW_RETENTION = "raw_retention"
DATA_QUALITY_SCORECARD = "data_quality_scorecard"
WAREHOUSE_TABLES = "warehouse_tables"
LINKED_PERSONS = "linked_persons"
INDICATOR_RELEASE = "indicator_release"
PER_FILE_ASSETS = (INTAKE_FILE, VALIDATED_FILE, PROTECTED_FILE)

CHECK_INTAKE_ACCEPTED = "intake_accepted"
CHECK_VALIDATION_PASSED = "validation_passed"
CHECK_LINKAGE_RAN = "linkage_ran"
CHECK_EVERY_AGENCY_CURRENT = "every_agency_has_current_data"
CHECK_AGENCIES_ON_TIME = "agencies_on_time"

GROUP_INTAKE = "intake"
GROUP_PRIVACY = "privacy"
GROUP_VALIDATION = "validation"
GROUP_WAREHOUSE = "warehouse"
GROUP_LINKAGE = "linkage"
GROUP_INDICATORS = "indicators"

TAG_STAGE = "c2c/stage"
TAG_FILE = "c2c/file"
TAG_SHA256 = "c2c/sha256"
