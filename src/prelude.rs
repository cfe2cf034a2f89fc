//! The parts of `std`'s prelude that live in `alloc`, for the core
//! modules, which build without `std` (feature `std` off: `no_std` +
//! `alloc`). With `std` on, these are the very same items.
#![allow(unused_imports)]

pub(crate) use alloc::borrow::ToOwned;
pub(crate) use alloc::boxed::Box;
pub(crate) use alloc::string::{String, ToString};
pub(crate) use alloc::vec::Vec;
pub(crate) use alloc::{format, vec};
