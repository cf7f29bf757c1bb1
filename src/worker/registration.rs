//! Where each workflow and activity of a task queue was registered, and
//! with which types: a name registered twice is refused at open (silently
//! keeping the last would run code nobody meant), and a start whose
//! definition's types differ from the registration is refused at once
//! (its input would never decode, and the run would park).

use std::collections::HashMap;
use std::fmt;
use std::panic::Location;

/// What kind of function a name is registered for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Workflow,
    Activity,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Workflow => "workflow type",
            Kind::Activity => "activity type",
        })
    }
}

/// One registration, as the user wrote it.
#[derive(Clone, Debug)]
pub(crate) struct Registration {
    /// The call that registered it, in the user's code.
    location: &'static Location<'static>,
    /// The registered function's type (a `fn` item's path, or a closure's).
    function: &'static str,
    /// The definition's types, as `WorkflowDef<I, O>` or `ActivityDef<I, O>`.
    signature: String,
}

impl Registration {
    /// A registration of `F` for a definition with input `I` and output `O`,
    /// made at `location`.
    pub(crate) fn new<I, O, F>(kind: Kind, location: &'static Location<'static>) -> Self {
        Registration {
            location,
            function: std::any::type_name::<F>(),
            signature: signature::<I, O>(kind),
        }
    }
}

impl fmt::Display for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at {} as {}",
            self.function, self.location, self.signature
        )
    }
}

/// A definition's types as shown in errors, and compared at a start.
pub(crate) fn signature<I, O>(kind: Kind) -> String {
    let def = match kind {
        Kind::Workflow => "WorkflowDef",
        Kind::Activity => "ActivityDef",
    };
    format!(
        "{def}<{}, {}>",
        std::any::type_name::<I>(),
        std::any::type_name::<O>()
    )
}

/// The registrations of one task queue, with the names registered twice.
#[derive(Clone, Debug, Default)]
pub(crate) struct Registrations {
    by_name: HashMap<(Kind, String), Registration>,
    /// One line per name registered more than once, in order.
    duplicates: Vec<String>,
}

impl Registrations {
    /// Records a registration of `name`; a second one for the same name is
    /// kept as a duplicate, reported by [`check`](Self::check).
    pub(crate) fn add(
        &mut self,
        task_queue: &str,
        kind: Kind,
        name: &str,
        registration: Registration,
    ) {
        match self.by_name.get(&(kind, name.to_string())) {
            Some(first) => self.duplicates.push(format!(
                "{kind} {name:?} is registered twice on task queue {task_queue:?}: \
                 first {first}, then {registration}"
            )),
            None => {
                self.by_name.insert((kind, name.to_string()), registration);
            }
        }
    }

    /// Adds another worker's registrations for the same queue.
    pub(crate) fn merge(&mut self, task_queue: &str, other: Registrations) {
        self.duplicates.extend(other.duplicates);
        for ((kind, name), registration) in other.by_name {
            self.add(task_queue, kind, &name, registration);
        }
    }

    /// Why the registrations cannot be used: every name registered twice.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.duplicates.is_empty() {
            return Ok(());
        }
        Err(format!(
            "{}; register each name once per task queue",
            self.duplicates.join("; ")
        ))
    }

    /// The types `name`'s workflow was registered with.
    pub(crate) fn workflow_signature(&self, name: &str) -> Option<&str> {
        self.by_name
            .get(&(Kind::Workflow, name.to_string()))
            .map(|r| r.signature.as_str())
    }
}
