//! slm patch (docs/RELIABILITY.md finding 10): how deeply a template may nest values, and no
//! cycles.
//!
//! Printing, serializing, comparing and dropping a value recurse once per level of nesting, so a
//! value nested tens of thousands of levels deep (`{% set ns.x = [ns.x] %}` in a loop, or
//! `[1]|batch(1)|batch(1)|...`) overflows the stack and aborts the process, and a namespace that
//! contains itself (`{% set ns.x = [ns] %}`) recurses without end.  Every value the engine creates
//! passes [`check_created`] (from `State::charge_value`), and every namespace assignment
//! [`check_assigned`]: both walk the new value, charging fuel per item, and fail past
//! [`MAX_NESTING`] levels or when the value reaches the namespace it is assigned to.
//!
//! The depth of immutable containers is memoized per render (keyed by the object's address; the
//! memo keeps the value alive so the address is not reused), so that `x = x + [i]` in a loop does
//! not walk `x` again every time.  Containers that hold a namespace (mutable) are walked afresh.
use std::cell::RefCell;
use std::collections::HashMap;

use crate::error::{Error, ErrorKind};
use crate::value::merge_object::{MergeDict, MergeSeq};
use crate::value::namespace_object::Namespace;
use crate::value::{ObjectRepr, Value};
use crate::vm::State;

/// The deepest nesting of lists, maps and namespaces a template may build.  Real chat templates
/// and the JSON they embed stay far below (serde_json parses at most 128 levels).
pub(crate) const MAX_NESTING: usize = 200;

/// Depths of the immutable containers already walked during one render.
#[derive(Default)]
pub(crate) struct NestingMemo {
    depths: RefCell<HashMap<usize, (Value, usize)>>,
}

fn too_deep() -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("value nested more than {MAX_NESTING} levels deep"),
    )
}

/// Checks a value the engine just created.
pub(crate) fn check_created(state: &State, value: &Value) -> Result<(), Error> {
    if value.as_object().is_none() {
        return Ok(());
    }
    walk(state, value, 0, None).map(|_| ())
}

/// Checks a value about to be assigned to the namespace `ns`.
pub(crate) fn check_assigned(state: &State, ns: &Value, value: &Value) -> Result<(), Error> {
    let target = ns.as_object().map(|o| o.addr());
    let (depth, _) = walk(state, value, 1, target)?;
    if depth + 1 > MAX_NESTING {
        return Err(too_deep());
    }
    Ok(())
}

/// The nesting depth of `value` (0 for a scalar) and whether it holds a namespace.  `level` is
/// how deep `value` sits below the value being checked; `target` is an object `value` must not
/// contain.
fn walk(
    state: &State,
    value: &Value,
    level: usize,
    target: Option<usize>,
) -> Result<(usize, bool), Error> {
    let Some(obj) = value.as_object() else {
        return Ok((0, false));
    };
    let addr = obj.addr();
    if Some(addr) == target {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "cannot assign a value that contains the namespace itself",
        ));
    }
    if let Some((_, depth)) = state.nesting.depths.borrow().get(&addr) {
        return Ok((*depth, false));
    }
    let is_namespace = obj.downcast_ref::<Namespace>().is_some();
    // A lazy merge is as deep as its deepest part: walk the (memoized) parts, not every item.
    let parts = obj
        .downcast_ref::<MergeSeq>()
        .map(MergeSeq::parts)
        .or_else(|| obj.downcast_ref::<MergeDict>().map(MergeDict::parts));
    let children: Box<dyn Iterator<Item = Value> + Send + Sync> = match obj.repr() {
        _ if parts.is_some() => Box::new(parts.unwrap_or_default().to_vec().into_iter()),
        ObjectRepr::Seq | ObjectRepr::Iterable => match obj.try_iter() {
            Some(iter) => iter,
            None => return Ok((0, false)),
        },
        ObjectRepr::Map => match obj.try_iter_pairs() {
            Some(pairs) => Box::new(pairs.flat_map(|(k, v)| [k, v])),
            None => return Ok((0, false)),
        },
        _ => return Ok((0, false)),
    };
    // This bounds the recursion of the walk itself.
    if level >= MAX_NESTING {
        return Err(too_deep());
    }
    let (mut depth, mut holds_namespace) = (0, is_namespace);
    for child in children {
        ok!(state.charge_items(1));
        let (d, ns) = ok!(walk(state, &child, level + 1, target));
        depth = depth.max(d);
        holds_namespace |= ns;
    }
    // A merge adds no level of its own.
    let depth = depth + usize::from(parts.is_none());
    if depth > MAX_NESTING {
        return Err(too_deep());
    }
    if !holds_namespace {
        state
            .nesting
            .depths
            .borrow_mut()
            .insert(addr, (value.clone(), depth));
    }
    Ok((depth, holds_namespace))
}
