"""Partitions: one dynamic partition per file dropped (its key is the file's path under the drop folder)."""

from dagster import DynamicPartitionsDefinition

DROP_FILES = "drop_files"
drop_files = DynamicPartitionsDefinition(name=DROP_FILES)
