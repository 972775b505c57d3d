//! host-tap: Ferry over smoltcp on a TAP device (being written).
fn main() {}
