//! `wrong-world`: a well-formed component that exports something other than
//! `eddy:operator/operator`, so the host's module check has something to refuse
//! ("exports no eddy:operator/operator@0.2.x").

// The generated export glue (expanded here, at the crate root) is `unsafe extern "C"` code.
#![allow(unsafe_code)]

/// Bindings of the inline `greeter` world.
#[allow(missing_docs)] // generated code
mod bindings {
    wit_bindgen::generate!({
        inline: r#"
            package eddy-test:wrong-world@0.1.0;

            world greeter {
                export greet: func(name: string) -> string;
            }
        "#,
        world: "greeter",
    });
}

/// The component: greets instead of processing records.
struct Greeter;

impl bindings::Guest for Greeter {
    fn greet(name: String) -> String {
        format!("hello, {name}; I am not an Eddy operator")
    }
}

bindings::export!(Greeter with_types_in bindings);
