"""Probabilistic record linkage over the privacy layer's encodings (issue 6).

Fellegi-Sunter with Splink (DuckDB backend) over keyed hashes and Bloom filters only: linkage never
sees a raw name, birth date or address. It dedupes within each agency and links across agencies, keeps
a persistent ``child_key`` per person across runs, queues uncertain pairs for pseudonymous clerical
review, applies reviewers' decisions on every later run, and measures its own quality.

Public API::

    settings = load_settings()                                   # schemas/linkage/settings.yaml
    model = train_model(encodings_by_agency, settings, workdir=linkage_dir)   # `c2c linkage train`
    model = load_model(path)
    result = link(encodings_by_agency, model, workdir=linkage_dir, run_id=run_id,
                  decisions=new_decisions, attributes=attributes_by_agency)
    result.crosswalk      # source_key, agency, child_key
    result.history        # merges and splits of this run
    result.review_queue   # pseudonymous pairs for clerical review
    result.quality        # LinkageQuality (also stored per run in the state)
    rekey_state(linkage_dir, old_to_new, label=...)              # after a key rotation (child keys kept)
    evaluate_against_truth(result.crosswalk, truth, persons)      # tests and benchmarks

Everything persistent lives in the linkage area (``workdir``, a path or a :class:`LinkageArea`, the one
owner of its layout): ``linkage.duckdb`` (state and Splink's working tables) and ``models/*.json``. No
Dagster here: the pipeline's stages wrap these calls.
"""

from data_sharing.linkage.area import LinkageArea
from data_sharing.linkage.model import LinkageModel, LinkageModelError, load_model, train_model
from data_sharing.linkage.quality import LinkageQuality, evaluate_against_truth
from data_sharing.linkage.records import LinkageInputError
from data_sharing.linkage.review import DecisionError, validate_decisions
from data_sharing.linkage.run import LinkageResult, link, quality_of_run, read_state, rekey_state
from data_sharing.linkage.settings import LinkageSettings, load_settings, parse_settings
from data_sharing.linkage.state import LinkageStateError

__all__ = [
    "DecisionError",
    "LinkageArea",
    "LinkageInputError",
    "LinkageModel",
    "LinkageModelError",
    "LinkageQuality",
    "LinkageResult",
    "LinkageSettings",
    "LinkageStateError",
    "evaluate_against_truth",
    "link",
    "load_model",
    "load_settings",
    "parse_settings",
    "quality_of_run",
    "read_state",
    "rekey_state",
    "train_model",
    "validate_decisions",
]
