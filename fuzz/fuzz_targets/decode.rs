//! The request decoder over arbitrary bytes: `sessiond::soap::decode` must answer a request or
//! a fault, never panic or hang, and a fault must encode to well-formed XML of bounded size in
//! both SOAP versions (what a client is sent, whatever it sent us).

#![no_main]

use libfuzzer_sys::fuzz_target;
use sessiond::soap::{decode, Limits, SoapVersion};

/// A fault echoes at most a short excerpt of the request, so its encoding stays small whatever
/// the request's size.
const MAX_FAULT_LEN: usize = 4096;

fuzz_target!(|data: &[u8]| {
    // The version the media type announced (http.rs passes it) follows the input's length, so
    // both are exercised and the seeds stay plain requests.
    let hint = if data.len() % 2 == 0 {
        SoapVersion::V11
    } else {
        SoapVersion::V12
    };
    match decode(data, hint, Limits::default()) {
        Ok(decoded) => {
            // The operation read must be one of the contract's, named as the WSDL names it.
            let op = decoded.request.operation();
            assert_eq!(sessiond::soap::Operation::from_name(op.name()), Some(op));
        }
        Err(rejected) => {
            for version in [SoapVersion::V11, SoapVersion::V12] {
                let xml = rejected.fault.encode(version);
                assert!(xml.len() <= MAX_FAULT_LEN, "a fault of {} bytes", xml.len());
                if let Err(e) = roxmltree::Document::parse(&xml) {
                    panic!("a fault that is not well-formed ({e}): {xml:?}");
                }
            }
        }
    }
});
