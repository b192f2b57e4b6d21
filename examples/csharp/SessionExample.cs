// getSession / validateSession / closeSession from C#, through the proxy class that Mono's
// `wsdl` tool (or .NET Framework's wsdl.exe) generates from the served WSDL (README.md beside
// this file):
//
//   wsdl -namespace:Sessiond -out:SessionService.cs http://127.0.0.1:8080/services/SessionService?wsdl
//   mcs -r:System.Web.Services.dll SessionService.cs SessionExample.cs
//   SESSIOND_PASSWORD=... mono SessionExample.exe http://127.0.0.1:8080/services/SessionService alice

using System;
using System.Web.Services.Protocols;
using System.Xml;
using Sessiond;

public static class SessionExample
{
    public static int Main(string[] args)
    {
        string endpoint = args.Length > 0 ? args[0] : "http://127.0.0.1:8080/services/SessionService";
        string user = args.Length > 1 ? args[1] : "alice";
        string password = Environment.GetEnvironmentVariable("SESSIOND_PASSWORD");

        // The proxy is named after the WSDL's service; Url overrides the address it was made with.
        var service = new SessionService { Url = endpoint };

        string sessionId;
        try
        {
            // document/literal wrapped: the request and response elements are unwrapped into
            // plain parameters and a plain result.
            sessionId = service.getSession(user, password);
        }
        catch (SoapException e)
        {
            Console.Error.WriteLine("login failed: " + FaultCode(e));
            return 1;
        }
        try
        {
            Console.WriteLine("valid: " + service.validateSession(sessionId).ToString().ToLower());

            // An array result is a Session[] whose LAST ELEMENT IS null for a getSession
            // session: the server appends <session xsi:nil="true"/> for legacy clients.
            Session[] active = service.listActiveSessionIds(sessionId);
            Console.WriteLine("getSession caller: " + active.Length + " elements, last is "
                + (active[active.Length - 1] == null ? "null" : "a session"));
            foreach (Session s in active)
            {
                if (s == null)
                    continue; // the trailing nil
                Console.WriteLine("  " + s.userId + " " + s.clientType + " expires "
                    + s.expirationTime.ToUniversalTime().ToString("yyyy-MM-ddTHH:mm:ssZ"));
            }

            // A getBWSession session gets arrays without it.
            string bw = service.getBWSession(user, password);
            try
            {
                Session[] bwActive = service.listActiveSessionIds(bw);
                Console.WriteLine("getBWSession caller: " + bwActive.Length + " elements, "
                    + (Array.IndexOf(bwActive, null) >= 0 ? "with" : "no") + " null");
            }
            finally
            {
                service.closeSession(bw);
            }
        }
        catch (SoapException e)
        {
            Console.Error.WriteLine("failed: " + FaultCode(e));
            return 1;
        }
        finally
        {
            Console.WriteLine("closed: " + service.closeSession(sessionId).ToString().ToLower());
        }
        return 0;
    }

    // The <sessionServiceFault><code> of a fault's detail (the proxy gives the detail as XML).
    static string FaultCode(SoapException e)
    {
        var ns = new XmlNamespaceManager(new NameTable());
        ns.AddNamespace("s", "urn:sessiond:session:1");
        XmlNode code = e.Detail == null ? null : e.Detail.SelectSingleNode(".//s:sessionServiceFault/s:code", ns);
        return (code == null ? e.Code.Name : code.InnerText) + " (" + e.Message + ")";
    }
}
