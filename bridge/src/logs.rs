//! The legacy pods' logs through the pods/log API (being written).
