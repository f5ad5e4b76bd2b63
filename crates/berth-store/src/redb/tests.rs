//! Tests of the redb backend.
