//! The declarative API: `provider!`, `write_event!` and `start_activity!`.

/// Declares a provider as a `static` [`LazyProvider`](crate::LazyProvider),
/// registered the first time it is used.
///
/// ```
/// ferret_provider::provider!(static WEB = "MyCompany.Web");
/// ferret_provider::provider! {
///     /// The storage layer's provider.
///     pub(crate) static STORE = "MyCompany.Store";
/// }
///
/// ferret_provider::write_event!(WEB, "Started", level: Information);
/// assert_eq!(STORE.name(), "MyCompany.Store");
/// ```
#[macro_export]
macro_rules! provider {
    ($(#[$attr:meta])* $vis:vis static $ident:ident = $name:expr $(;)?) => {
        $(#[$attr])*
        $vis static $ident: $crate::LazyProvider = $crate::LazyProvider::new($name);
    };
}

/// Writes an event, declared where it is written, in the manner of ETW's
/// `TraceLoggingWrite`.
///
/// ```text
/// write_event!(PROVIDER, "Name" [, option]... [, field = expr]... [,])
/// ```
///
/// - `PROVIDER`: a [`Provider`](crate::Provider) or a
///   [`LazyProvider`](crate::LazyProvider) (such as one from
///   [`provider!`](crate::provider)), or a reference to one.
/// - `"Name"`: the event's name, a constant string.
/// - Options, each at most once, before the fields, in any order:
///   - `level: NAME`, a [`Level`](crate::Level) variant (`Critical`,
///     `Error`, `Warning`, `Information`, `Verbose`); default `Verbose`, as
///     in TraceLogging.
///   - `keywords: EXPR`, a constant `u64` mask; default 0 (wanted by any
///     session that enables the provider at the level).
///   - `opcode: NAME` (an [`Opcode`](crate::Opcode) variant) or
///     `opcode: NUMBER`; default `Info`.
///   - `id: EXPR`, a constant `u16` event id; default 0.
///   - `activity: EXPR`, a [`Guid`](crate::Guid) to write as the event's
///     activity id instead of the thread's current activity.
///   - `related: EXPR`, a [`Guid`](crate::Guid) to write as the related
///     activity id (ETW's transfer).
/// - Fields: `name = expr` or `"any name" = expr`, at most 24. Each value's
///   type must implement [`FieldValue`](crate::FieldValue): integers,
///   `f32`/`f64`, `bool`, `str`/`String`, byte slices, arrays and vectors,
///   [`Guid`](crate::Guid), references to these, or a program's own types
///   that say which of these they carry. Anything else does not compile.
///
/// Nothing after the provider is evaluated unless a session wants the
/// event: when none does, the macro costs one relaxed load and a test. The
/// event's metadata is a `static` of the call site, built at compile time;
/// writing allocates nothing. The event carries the thread's current
/// activity id, if any (see [`start_activity!`](crate::start_activity)).
///
/// ```
/// use ferret_provider::{provider, write_event};
///
/// provider!(static WEB = "MyCompany.Web");
///
/// struct Request { path: String, bytes: usize }
/// let req = Request { path: "/index.html".into(), bytes: 512 };
/// let code: u16 = 200;
///
/// write_event!(WEB, "Request", level: Information, keywords: 0x1, opcode: Info,
///     path = req.path.as_str(), status = code, bytes = req.bytes, "cache hit" = false);
/// write_event!(WEB, "Heartbeat");
/// ```
#[macro_export]
macro_rules! write_event {
    ($provider:expr, $name:expr $(, $($rest:tt)*)?) => {
        $crate::__ferret_event!(@parse write ($provider) ($name)
            [0] [Verbose] [0] [$crate::Opcode::Info] [] [] {} $($($rest)*)?)
    };
}

/// Starts an activity, declared where it starts, and returns its
/// [`Activity`](crate::Activity) guard.
///
/// ```text
/// let guard = start_activity!(PROVIDER, "Name" [, option]... [, field = expr]... [,]);
/// ```
///
/// The arguments are those of [`write_event!`](crate::write_event) without
/// `opcode:`. If a session wants the start event, the macro makes a new
/// activity id (or takes `activity: EXPR`), writes the start event (with
/// opcode 1) with the fields, the new id and, as related id, the activity
/// current until now (or `related: EXPR`), and makes the new activity current.
/// Dropping the guard writes the stop event (same name, level and keywords,
/// opcode 2, no fields) and makes the previous activity current again. If
/// no session wants the start event, the guard is inert: no id, no events,
/// and the fields are not evaluated.
///
/// ```
/// use ferret_provider::{activity, provider, start_activity, write_event};
///
/// provider!(static JOBS = "MyCompany.Jobs");
///
/// fn run(job: u64) {
///     let _job = start_activity!(JOBS, "Job", level: Information, keywords: 0x2, job = job);
///     write_event!(JOBS, "Step", level: Information, keywords: 0x2, step = "load");
///     {
///         // Nested: its start event names the job as related.
///         let _save = start_activity!(JOBS, "Save", level: Information, keywords: 0x2);
///         write_event!(JOBS, "Step", level: Information, keywords: 0x2, step = "save");
///     }
/// }
/// run(7);
/// assert_eq!(activity::current(), None);
/// ```
#[macro_export]
macro_rules! start_activity {
    ($provider:expr, $name:expr $(, $($rest:tt)*)?) => {
        $crate::__ferret_event!(@parse activity ($provider) ($name)
            [0] [Verbose] [0] [$crate::Opcode::Start] [] [] {} $($($rest)*)?)
    };
}

/// The parser shared by `write_event!` and `start_activity!`: options and
/// fields are munched one at a time into bracketed accumulators (id, level,
/// keywords, opcode, activity, related, fields), then expanded.
#[doc(hidden)]
#[macro_export]
macro_rules! __ferret_event {
    (@opt) => { ::core::option::Option::None };
    (@opt $e:expr) => { ::core::option::Option::Some($e) };

    (@parse $m:ident $p:tt $n:tt $id:tt $lv:tt $kw:tt $op:tt $act:tt $rel:tt $f:tt
        level: $new:ident $(, $($rest:tt)*)?) => {
        $crate::__ferret_event!(@parse $m $p $n $id [$new] $kw $op $act $rel $f $($($rest)*)?)
    };
    (@parse $m:ident $p:tt $n:tt $id:tt $lv:tt $kw:tt $op:tt $act:tt $rel:tt $f:tt
        keywords: $new:expr $(, $($rest:tt)*)?) => {
        $crate::__ferret_event!(@parse $m $p $n $id $lv [$new] $op $act $rel $f $($($rest)*)?)
    };
    (@parse $m:ident $p:tt $n:tt $id:tt $lv:tt $kw:tt $op:tt $act:tt $rel:tt $f:tt
        id: $new:expr $(, $($rest:tt)*)?) => {
        $crate::__ferret_event!(@parse $m $p $n [$new] $lv $kw $op $act $rel $f $($($rest)*)?)
    };
    (@parse write $p:tt $n:tt $id:tt $lv:tt $kw:tt $op:tt $act:tt $rel:tt $f:tt
        opcode: $new:ident $(, $($rest:tt)*)?) => {
        $crate::__ferret_event!(@parse write $p $n $id $lv $kw [$crate::Opcode::$new] $act $rel $f
            $($($rest)*)?)
    };
    (@parse write $p:tt $n:tt $id:tt $lv:tt $kw:tt $op:tt $act:tt $rel:tt $f:tt
        opcode: $new:literal $(, $($rest:tt)*)?) => {
        $crate::__ferret_event!(@parse write $p $n $id $lv $kw [$new] $act $rel $f $($($rest)*)?)
    };
    (@parse activity $p:tt $n:tt $id:tt $lv:tt $kw:tt $op:tt $act:tt $rel:tt $f:tt
        opcode: $($rest:tt)*) => {
        ::core::compile_error!("start_activity! writes opcode Start and then Stop; it takes no `opcode:`")
    };
    (@parse $m:ident $p:tt $n:tt $id:tt $lv:tt $kw:tt $op:tt $act:tt $rel:tt $f:tt
        activity: $new:expr $(, $($rest:tt)*)?) => {
        $crate::__ferret_event!(@parse $m $p $n $id $lv $kw $op [$new] $rel $f $($($rest)*)?)
    };
    (@parse $m:ident $p:tt $n:tt $id:tt $lv:tt $kw:tt $op:tt $act:tt $rel:tt $f:tt
        related: $new:expr $(, $($rest:tt)*)?) => {
        $crate::__ferret_event!(@parse $m $p $n $id $lv $kw $op $act [$new] $f $($($rest)*)?)
    };
    (@parse $m:ident $p:tt $n:tt $id:tt $lv:tt $kw:tt $op:tt $act:tt $rel:tt {$($f:tt)*}
        $name:ident = $v:expr $(, $($rest:tt)*)?) => {
        $crate::__ferret_event!(@parse $m $p $n $id $lv $kw $op $act $rel
            {$($f)* (::core::stringify!($name), $v)} $($($rest)*)?)
    };
    (@parse $m:ident $p:tt $n:tt $id:tt $lv:tt $kw:tt $op:tt $act:tt $rel:tt {$($f:tt)*}
        $name:literal = $v:expr $(, $($rest:tt)*)?) => {
        $crate::__ferret_event!(@parse $m $p $n $id $lv $kw $op $act $rel
            {$($f)* ($name, $v)} $($($rest)*)?)
    };

    (@parse write ($p:expr) ($n:expr) [$id:expr] [$lv:ident] [$kw:expr] [$op:expr]
        [$($act:expr)?] [$($rel:expr)?] {$(($fname:expr, $fval:expr))*}) => {{
        const __FERRET_LEVEL: $crate::Level = $crate::Level::$lv;
        const __FERRET_KEYWORDS: u64 = $kw;
        static __FERRET_SITE: $crate::__private::EventSite = $crate::__private::EventSite::new(
            $id, $n, __FERRET_LEVEL, __FERRET_KEYWORDS, ($op) as u8, &[$($fname),*],
        );
        let __ferret_provider = $crate::__private::provider(&$p);
        if __ferret_provider.enabled(__FERRET_LEVEL, __FERRET_KEYWORDS) {
            // The scrutinee keeps temporaries of the field expressions
            // alive until the event is written.
            match ($(&$fval,)*) {
                __ferret_fields => $crate::__private::write_site(
                    __ferret_provider,
                    &__FERRET_SITE,
                    &__ferret_fields,
                    $crate::__ferret_event!(@opt $($act)?),
                    $crate::__ferret_event!(@opt $($rel)?),
                ),
            }
        }
    }};

    (@parse activity ($p:expr) ($n:expr) [$id:expr] [$lv:ident] [$kw:expr] [$op:expr]
        [$($act:expr)?] [$($rel:expr)?] {$(($fname:expr, $fval:expr))*}) => {{
        const __FERRET_LEVEL: $crate::Level = $crate::Level::$lv;
        const __FERRET_KEYWORDS: u64 = $kw;
        static __FERRET_START: $crate::__private::EventSite = $crate::__private::EventSite::new(
            $id, $n, __FERRET_LEVEL, __FERRET_KEYWORDS, $crate::Opcode::Start as u8,
            &[$($fname),*],
        );
        static __FERRET_STOP: $crate::__private::EventSite = $crate::__private::EventSite::new(
            $id, $n, __FERRET_LEVEL, __FERRET_KEYWORDS, $crate::Opcode::Stop as u8, &[],
        );
        let __ferret_provider = $crate::__private::provider(&$p);
        if __ferret_provider.enabled(__FERRET_LEVEL, __FERRET_KEYWORDS) {
            match ($(&$fval,)*) {
                __ferret_fields => $crate::__private::start_site(
                    __ferret_provider,
                    &__FERRET_START,
                    &__ferret_fields,
                    &__FERRET_STOP,
                    $crate::__ferret_event!(@opt $($act)?),
                    $crate::__ferret_event!(@opt $($rel)?),
                ),
            }
        } else {
            $crate::Activity::inert()
        }
    }};

    (@parse $m:ident $p:tt $n:tt $id:tt $lv:tt $kw:tt $op:tt $act:tt $rel:tt $f:tt
        $($rest:tt)+) => {
        ::core::compile_error!(::core::concat!(
            "expected `level: NAME`, `keywords: EXPR`, `opcode: NAME`, `id: EXPR`, ",
            "`activity: EXPR`, `related: EXPR` or `field = EXPR`, found `",
            ::core::stringify!($($rest)+), "`"
        ))
    };
}
