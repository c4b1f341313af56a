//! Realm CRD types (filled in by the operator work).
