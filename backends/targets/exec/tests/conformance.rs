//! The plugin target, driving the reference plugin
//! (`tests/plugins/sqlite_target.py`), passes the target conformance suite.

use plumb_core::target::Target;

use crate::plugin::plugin;

/// Plugin targets, each a plugin process on a database of its own.
fn plugin_targets() -> impl FnMut() -> Box<dyn Target> {
    let mut plugins = Vec::new();
    move || {
        let plugin = plugin(None);
        let target = plugin.spawn();
        // The plugin's database lives as long as the factory.
        plugins.push(plugin);
        Box::new(target)
    }
}

plumb_core::target_conformance!(plugin_targets());
