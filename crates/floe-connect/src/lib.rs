//! floe-connect
