//! latchkey's integration tests: one binary, one module per subject, one support kit
//! (`common`: tools, running programs, isolated environments, the protocol, a gnome-keyring
//! session, a Distribution registry, OCI images; `device_auth`: a device-login authorization
//! server; `resolver_support`: registries, images and token services for the resolver).
//!
//!     cargo test --test it                      # all of them
//!     cargo test --test it protocol_conformance # one module

// Off Unix the modules that run Linux tools are left out, so parts of the kit go unused there.
#![cfg_attr(not(unix), allow(dead_code))]

mod common;
mod device_auth;
mod resolver_support;

mod auto_store;
mod bad_input;
#[cfg(unix)] // runs Linux tools and Unix-only stand-ins
mod bazel_helper;
mod configure_docker;
mod crash_safety;
mod device_login;
mod device_registry;
mod docker_cli;
mod fault_matrix;
mod file_store_concurrency;
#[cfg(unix)] // runs Linux tools and Unix-only stand-ins
mod first_hour;
mod hostile_numbers;
#[cfg(unix)] // runs Linux tools and Unix-only stand-ins
mod hostile_peers;
mod keyring_store;
mod packaging;
mod properties;
mod protocol_conformance;
mod pull_errors;
mod readme_examples;
mod resolver_faults;
mod resolver_library;
mod resolver_pull;
#[cfg(unix)] // runs Linux tools and Unix-only stand-ins
mod resolver_pull_robust;
mod secret_hygiene;
mod skopeo_client;
mod static_bearer_registry;
mod static_bearer_sources;
mod trust_files;
mod windows_wine;
