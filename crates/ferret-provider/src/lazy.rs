//! Providers declared as statics and registered on first use.

use std::ops::Deref;
use std::sync::OnceLock;

use crate::Provider;

/// A provider declared as a `static` (usually with [`provider!`]) and
/// registered the first time it is used: the first enable check, event or
/// call to [`LazyProvider::get`]. Afterwards using it costs one load more
/// than using a [`Provider`].
///
/// Registration waits for the daemon's answer (at most
/// [`Options::register_timeout`](crate::Options::register_timeout)), so a
/// program that must not pause on its first event calls
/// [`LazyProvider::get`] at start-up.
///
/// ```
/// use ferret_provider::{LazyProvider, Level};
///
/// static DB: LazyProvider = LazyProvider::new("MyCompany.Db");
///
/// fn main() {
///     DB.get(); // register now rather than on the first event
///     if DB.enabled(Level::Verbose, 0) {
///         // ...
///     }
/// }
/// ```
///
/// [`provider!`]: crate::provider
#[derive(Debug)]
pub struct LazyProvider {
    name: &'static str,
    cell: OnceLock<Provider>,
}

impl LazyProvider {
    /// A provider called `name`, not registered yet.
    ///
    /// ```
    /// static NET: ferret_provider::LazyProvider = ferret_provider::LazyProvider::new("MyCompany.Net");
    /// assert_eq!(NET.name(), "MyCompany.Net");
    /// ```
    pub const fn new(name: &'static str) -> LazyProvider {
        LazyProvider {
            name,
            cell: OnceLock::new(),
        }
    }

    /// The provider's name (without registering it).
    ///
    /// ```
    /// ferret_provider::provider!(static APP = "Example.Name");
    /// assert_eq!(APP.name(), "Example.Name");
    /// ```
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The registered provider, registering it if this is the first use.
    ///
    /// ```
    /// ferret_provider::provider!(static APP = "Example.Get");
    /// let p: ferret_provider::Provider = APP.get();
    /// assert_eq!(p.name(), "Example.Get");
    /// ```
    #[inline]
    pub fn get(&self) -> Provider {
        *self.provider()
    }

    #[inline]
    fn provider(&self) -> &Provider {
        self.cell.get_or_init(|| Provider::register(self.name))
    }
}

impl Deref for LazyProvider {
    type Target = Provider;

    /// The registered provider, so that a `LazyProvider` is used like a
    /// [`Provider`].
    ///
    /// ```
    /// ferret_provider::provider!(static APP = "Example.Deref");
    /// assert_eq!(APP.guid(), ferret_provider::Guid::from_name("Example.Deref"));
    /// ```
    #[inline]
    fn deref(&self) -> &Provider {
        self.provider()
    }
}
