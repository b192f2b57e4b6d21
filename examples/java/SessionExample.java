// getSession / validateSession / closeSession from Java, through the JAX-WS classes that
// wsimport generates from the served WSDL (see README.md beside this file):
//
//   wsimport -keep -p sessiond.client -d generated http://127.0.0.1:8080/services/SessionService?wsdl
//
// Run with the endpoint, a user with a view right (for the listing) and its password:
//   SESSIOND_PASSWORD=... java ... SessionExample http://127.0.0.1:8080/services/SessionService alice

import java.net.URL;
import java.util.List;

import javax.xml.ws.BindingProvider;

import sessiond.client.Session;
import sessiond.client.SessionService;
import sessiond.client.SessionServiceFault_Exception;
import sessiond.client.SessionServicePortType;

public class SessionExample {
    public static void main(String[] args) throws Exception {
        String endpoint = args.length > 0 ? args[0] : "http://127.0.0.1:8080/services/SessionService";
        String user = args.length > 1 ? args[1] : "alice";
        String password = System.getenv("SESSIOND_PASSWORD");

        // Port "SessionServiceSoap" of service "SessionService" gives getSessionServiceSoap().
        SessionService service = new SessionService(new URL(endpoint + "?wsdl"));
        SessionServicePortType port = service.getSessionServiceSoap();
        // Calls go to the endpoint given, whatever address the WSDL was generated with.
        ((BindingProvider) port).getRequestContext()
                .put(BindingProvider.ENDPOINT_ADDRESS_PROPERTY, endpoint);

        String sessionId;
        try {
            // document/literal wrapped: wsimport unwraps the request and response elements into
            // plain parameters and a plain result.
            sessionId = port.getSession(user, password);
        } catch (SessionServiceFault_Exception e) {
            // The fault detail <sessionServiceFault> is the JAXB class SessionServiceFault; the
            // exception got the _Exception suffix because the names collide.
            System.err.println("login failed: " + e.getFaultInfo().getCode()
                    + " (" + e.getFaultInfo().getMessage() + ")");
            System.exit(1);
            return;
        }
        try {
            boolean valid = port.validateSession(sessionId);
            System.out.println("valid: " + valid);

            // An array result is a List whose LAST ELEMENT IS null for a getSession session:
            // the server appends <session xsi:nil="true"/> for legacy clients.
            List<Session> active = port.listActiveSessionIds(sessionId);
            System.out.println("getSession caller: " + active.size() + " elements, last is "
                    + (active.get(active.size() - 1) == null ? "null" : "a session"));
            for (Session s : active) {
                if (s == null) {
                    continue; // the trailing nil
                }
                System.out.println("  " + s.getUserId() + " " + s.getClientType()
                        + " expires " + s.getExpirationTime());
            }

            // A getBWSession session gets arrays without it.
            String bw = port.getBWSession(user, password);
            try {
                List<Session> bwActive = port.listActiveSessionIds(bw);
                System.out.println("getBWSession caller: " + bwActive.size() + " elements, "
                        + (bwActive.contains(null) ? "with" : "no") + " null");
            } finally {
                port.closeSession(bw);
            }
        } catch (SessionServiceFault_Exception e) {
            System.err.println("failed: " + e.getFaultInfo().getCode());
            System.exit(1);
        } finally {
            boolean closed = port.closeSession(sessionId);
            System.out.println("closed: " + closed);
        }
    }
}
