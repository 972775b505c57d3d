//! One control connection: login state, working directory, transfer settings.
