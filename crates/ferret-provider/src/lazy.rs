//! Providers declared as statics and registered on first use.

use std::ops::Deref;
use std::sync::atomic::{AtomicPtr, Ordering};

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
    /// The registered provider, boxed and kept for the life of the process;
    /// null until the first use. Not a `OnceLock`: that would be held for
    /// the whole registration wait, and a child forked meanwhile would find
    /// it held by a thread it does not have and wait forever on first use.
    cell: AtomicPtr<Provider>,
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
            cell: AtomicPtr::new(std::ptr::null_mut()),
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
        let p = self.cell.load(Ordering::Acquire);
        if p.is_null() {
            return self.register();
        }
        // SAFETY: a non-null pointer here came from `Box::into_raw` in
        // `register` and is never freed or changed once published.
        unsafe { &*p }
    }

    /// Registers the provider without holding anything that a forked child
    /// could inherit held: threads that race here each register (the
    /// registry returns the same provider for the same name) and the first
    /// to publish wins.
    #[cold]
    fn register(&self) -> &Provider {
        let fresh = Box::into_raw(Box::new(Provider::register(self.name)));
        match self.cell.compare_exchange(
            std::ptr::null_mut(),
            fresh,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            // SAFETY: `fresh` is now published and never freed.
            Ok(_) => unsafe { &*fresh },
            Err(won) => {
                // SAFETY: `fresh` was never published, so this thread owns it.
                drop(unsafe { Box::from_raw(fresh) });
                // SAFETY: `won` was published by `register` and is never freed.
                unsafe { &*won }
            }
        }
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
