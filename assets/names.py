"""Asset keys, check names and tags as constants (referenced by sensors, schedules, the CLI and tests)."""

INTAKE_FILE = "intake_file"
CURRENT_SNAPSHOTS = "current_snapshots"

CHECK_INTAKE_ACCEPTED = "intake_accepted"
CHECK_EVERY_AGENCY_CURRENT = "every_agency_has_current_data"
CHECK_AGENCIES_ON_TIME = "agencies_on_time"

GROUP_INTAKE = "intake"

TAG_STAGE = "c2c/stage"
TAG_FILE = "c2c/file"
TAG_SHA256 = "c2c/sha256"
