//! Unit tests of the upgrade decision.
