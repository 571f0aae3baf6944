"""Test helpers: record factories, event mutations, local fakes of external services."""
