//! Host sockets as an embedded-nal stack (placeholder; being written).
