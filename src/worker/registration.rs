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
    /// The definition's types.
    signature: Signature,
}

impl Registration {
    /// A registration of `F` for a definition with input `I` and output `O`,
    /// made at `location`.
    pub(crate) fn new<I, O, F>(kind: Kind, location: &'static Location<'static>) -> Self {
        Registration {
            location,
            function: std::any::type_name::<F>(),
            signature: Signature::of::<I, O>(kind),
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

/// A definition's types, compared at every start: the type names only,
/// so a start neither allocates nor formats unless they differ. Shown in
/// errors as `WorkflowDef<I, O>` or `ActivityDef<I, O>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Signature {
    kind: Kind,
    input: &'static str,
    output: &'static str,
}

impl Signature {
    /// The signature of a definition of `kind` with input `I` and output `O`.
    pub(crate) fn of<I, O>(kind: Kind) -> Self {
        Signature {
            kind,
            input: std::any::type_name::<I>(),
            output: std::any::type_name::<O>(),
        }
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let def = match self.kind {
            Kind::Workflow => "WorkflowDef",
            Kind::Activity => "ActivityDef",
        };
        write!(f, "{def}<{}, {}>", self.input, self.output)
    }
}

/// The registrations of one task queue, with the names registered twice.
#[derive(Clone, Debug, Default)]
pub(crate) struct Registrations {
    /// By kind, then name: a map per kind, so a lookup by `&str` needs no
    /// owned key.
    workflows: HashMap<String, Registration>,
    activities: HashMap<String, Registration>,
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
        let by_name = match kind {
            Kind::Workflow => &mut self.workflows,
            Kind::Activity => &mut self.activities,
        };
        match by_name.get(name) {
            Some(first) => self.duplicates.push(format!(
                "{kind} {name:?} is registered twice on task queue {task_queue:?}: \
                 first {first}, then {registration}"
            )),
            None => {
                by_name.insert(name.to_string(), registration);
            }
        }
    }

    /// Adds another worker's registrations for the same queue.
    pub(crate) fn merge(&mut self, task_queue: &str, other: Registrations) {
        self.duplicates.extend(other.duplicates);
        for (name, registration) in other.workflows {
            self.add(task_queue, Kind::Workflow, &name, registration);
        }
        for (name, registration) in other.activities {
            self.add(task_queue, Kind::Activity, &name, registration);
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
    pub(crate) fn workflow_signature(&self, name: &str) -> Option<Signature> {
        self.workflows.get(name).map(|r| r.signature)
    }
}
