//! The system under test: a saga coordinator (work in progress).
