//! placeholder, replaced by the tfplug layer
