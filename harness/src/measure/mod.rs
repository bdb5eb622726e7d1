//! Watching the server process (placeholder).
