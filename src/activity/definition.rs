//! `ActivityDef`: an activity's durable name with its input and output types.

use std::fmt;
use std::marker::PhantomData;

/// An activity's name as stored in history, with its input and output types.
///
/// Declare it once as a constant and use it both to register the
/// implementation and to call the activity from a workflow, so the types
/// match at compile time:
///
/// ```
/// use steadfast::ActivityDef;
/// const SAY_HELLO: ActivityDef<String, String> = ActivityDef::new("say_hello");
/// ```
pub struct ActivityDef<I, O> {
    name: &'static str,
    types: PhantomData<fn(I) -> O>,
}

impl<I, O> ActivityDef<I, O> {
    /// Names an activity. The name is its durable identity: renaming it breaks
    /// replay of histories that scheduled it.
    pub const fn new(name: &'static str) -> Self {
        ActivityDef {
            name,
            types: PhantomData,
        }
    }

    /// The name stored in history.
    pub const fn name(&self) -> &'static str {
        self.name
    }
}

impl<I, O> Clone for ActivityDef<I, O> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<I, O> Copy for ActivityDef<I, O> {}

impl<I, O> fmt::Debug for ActivityDef<I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActivityDef({:?})", self.name)
    }
}
