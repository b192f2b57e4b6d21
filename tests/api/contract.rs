//! The operation table (`soap::operations`) against the contract as the server serves it:
//! the WSDL's operations, in order, with their request children and response elements, and a
//! handler behind every one of them.

use sessiond::soap::Operation;

use crate::helpers::*;

const WSDL: &str = "http://schemas.xmlsoap.org/wsdl/";
const XS: &str = "http://www.w3.org/2001/XMLSchema";

/// One operation as a description declares it.
#[derive(Debug, PartialEq, Eq)]
struct Declared {
    name: String,
    /// The request element's children: (name, XML Schema type).
    request: Vec<(String, String)>,
    response: String,
}

fn local(qname: &str) -> &str {
    qname.rsplit(':').next().unwrap_or(qname)
}

/// Reads a served description: the portType's operations, each input and output message
/// followed to its element, and the request element's sequence.
fn declared(body: &str) -> Vec<Declared> {
    let doc = roxmltree::Document::parse(body).expect("the WSDL is XML");
    let element_of_message = |message: &str| -> String {
        let message = doc
            .descendants()
            .find(|n| n.has_tag_name((WSDL, "message")) && n.attribute("name") == Some(message))
            .unwrap_or_else(|| panic!("no message {message}"));
        let part = message
            .children()
            .find(|n| n.has_tag_name((WSDL, "part")))
            .expect("a part");
        local(part.attribute("element").expect("a document/literal part")).to_owned()
    };
    let children_of_element = |name: &str| -> Vec<(String, String)> {
        let element = doc
            .descendants()
            .find(|n| {
                n.has_tag_name((XS, "element"))
                    && n.parent().is_some_and(|p| p.has_tag_name((XS, "schema")))
                    && n.attribute("name") == Some(name)
            })
            .unwrap_or_else(|| panic!("no element {name}"));
        element
            .descendants()
            .filter(|n| n.has_tag_name((XS, "element")) && n != &element)
            .map(|n| {
                let ty = n.attribute("type").unwrap_or("");
                (
                    n.attribute("name").unwrap().to_owned(),
                    local(ty).to_owned(),
                )
            })
            .collect()
    };
    let port_type = doc
        .descendants()
        .find(|n| n.has_tag_name((WSDL, "portType")))
        .expect("a portType");
    port_type
        .children()
        .filter(|n| n.has_tag_name((WSDL, "operation")))
        .map(|op| {
            let message = |kind: &str| {
                let node = op
                    .children()
                    .find(|n| n.has_tag_name((WSDL, kind)))
                    .unwrap_or_else(|| panic!("no {kind}"));
                element_of_message(local(node.attribute("message").unwrap()))
            };
            let request = message("input");
            Declared {
                name: op.attribute("name").unwrap().to_owned(),
                request: children_of_element(&request),
                response: message("output"),
            }
        })
        .collect()
}

fn served(app: &TestApp, query: &str) -> Vec<Declared> {
    let r = app.get(&format!("{PATH}?{query}"));
    assert_eq!(r.status, 200, "{query}: {}", r.body);
    declared(&r.body)
}

#[test]
fn the_operation_table_is_the_served_wsdl_in_names_order_request_children_and_responses() {
    let app = spawn_app();
    for query in ["wsdl", "wsdl=soap12"] {
        let declared = served(&app, query);
        let names: Vec<&str> = declared.iter().map(|d| d.name.as_str()).collect();
        let ours: Vec<&str> = Operation::ALL.iter().map(|op| op.name()).collect();
        assert_eq!(names, ours, "?{query}");
        for (d, op) in declared.iter().zip(Operation::ALL) {
            let children: Vec<&str> = d.request.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(children, op.request_fields(), "?{query}: {}", d.name);
            assert_eq!(d.response, op.response_name(), "?{query}: {}", d.name);
        }
    }
}

/// A value of the schema type that names nothing stored.
fn dummy(ty: &str) -> &'static str {
    match ty {
        "boolean" => "false",
        "int" => "0",
        _ => "nobody",
    }
}

#[test]
fn every_operation_the_served_wsdl_declares_is_answered_by_the_rules_not_refused_as_unknown() {
    let app = spawn_app();
    for d in served(&app, "wsdl") {
        let fields: Vec<(&str, &str)> = d
            .request
            .iter()
            .map(|(name, ty)| (name.as_str(), dummy(ty)))
            .collect();
        let r = app.call(&d.name, &fields);
        // With a caller nobody knows, a handler answers its response element (closeSession:
        // false) or a fault of the rules (a failed login, an invalid session). What the
        // decoder alone would give, INVALID_REQUEST for an unknown operation or a missing
        // element, would mean the table and the WSDL disagree.
        if r.status == 200 {
            assert!(
                r.doc()
                    .descendants()
                    .any(|n| n.has_tag_name((NS, d.response.as_str()))),
                "{}: no {} in {}",
                d.name,
                d.response,
                r.body
            );
        } else {
            let code = r.fault_code();
            assert!(
                matches!(
                    code.as_deref(),
                    Some("INVALID_SESSION" | "AUTHENTICATION_FAILED")
                ),
                "{}: {code:?} is not the rules' answer to an unknown caller: {}",
                d.name,
                r.body
            );
        }
    }
}
