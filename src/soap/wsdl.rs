//! The served descriptions: the contract's two WSDL files, copied into `wsdl/` and built into
//! the binary, with every address set to the URL the client reached us by.

/// The address the contract files carry, replaced on every request.
const PLACEHOLDER: &str = "location=\"http://localhost:8080/services/SessionService\"";

const SOAP11: &str = include_str!("../../wsdl/SessionService.wsdl");
const SOAP12: &str = include_str!("../../wsdl/SessionService-soap12.wsdl");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Description {
    /// `?wsdl`: the SOAP 1.1 binding alone, for old generators.
    Soap11,
    /// `?wsdl=soap12`: both bindings.
    Soap12,
}

impl Description {
    /// Which description a query string asks for, if any: `wsdl`, `WSDL`, `wsdl=soap12`.
    pub fn from_query(query: &str) -> Option<Self> {
        let mut found = None;
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if key.eq_ignore_ascii_case("wsdl") {
                found = Some(if value.eq_ignore_ascii_case("soap12") {
                    Description::Soap12
                } else {
                    Description::Soap11
                });
            }
        }
        found
    }

    /// The description with its addresses set to `address`.
    pub fn render(self, address: &str) -> String {
        let text = match self {
            Description::Soap11 => SOAP11,
            Description::Soap12 => SOAP12,
        };
        let address = quick_xml::escape::escape(address);
        text.replace(PLACEHOLDER, &format!("location=\"{address}\""))
    }
}

/// The operation names a description declares in its portType, for tests that hold the code to
/// the contract.
pub fn declared_operations(description: Description) -> Vec<String> {
    let text = description.render("");
    let port_type = text
        .split("<wsdl:portType")
        .nth(1)
        .and_then(|s| s.split("</wsdl:portType>").next())
        .unwrap_or_default();
    port_type
        .split("<wsdl:operation name=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soap::Operation;

    #[test]
    fn the_query_picks_the_description() {
        assert_eq!(Description::from_query("wsdl"), Some(Description::Soap11));
        assert_eq!(Description::from_query("WSDL"), Some(Description::Soap11));
        assert_eq!(
            Description::from_query("wsdl=soap12"),
            Some(Description::Soap12)
        );
        assert_eq!(Description::from_query("x=1"), None);
    }

    #[test]
    fn every_address_is_rewritten() {
        for d in [Description::Soap11, Description::Soap12] {
            let text = d.render("https://example.org/s?a&b");
            assert!(!text.contains("localhost:8080"));
            assert!(text.contains("location=\"https://example.org/s?a&amp;b\""));
        }
    }

    #[test]
    fn both_descriptions_declare_the_operations_of_the_table_in_its_order() {
        for d in [Description::Soap11, Description::Soap12] {
            let declared = declared_operations(d);
            let ours: Vec<_> = Operation::ALL.iter().map(|o| o.name().to_owned()).collect();
            assert_eq!(ours, declared);
        }
    }
}
