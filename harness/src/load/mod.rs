//! Load generation (placeholder).
