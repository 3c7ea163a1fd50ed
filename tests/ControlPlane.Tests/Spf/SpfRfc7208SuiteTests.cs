using System.Net;
using Gateway.Core.Spf;
using Gateway.ControlPlane.Spf;

namespace ControlPlane.Tests.Spf;

/// <summary>
/// Cases of the openspf.org RFC 7208 test suite (release 2014.04), transcribed by hand: per section the
/// zone (SPF-type records as the TXT records a TXT-only implementation sees) and per case the sender,
/// client address, HELO and the accepted results. The explanation (exp=) texts are not checked: the
/// gateway does not show them, and the suite makes exp optional. "TIMEOUT" names fail every query.
/// </summary>
[Trait("Kind", "Unit")]
public sealed class SpfRfc7208SuiteTests
{
    private static readonly Dictionary<string, Func<ZoneDns>> Sections = new()
    {
        ["initial"] = () => new ZoneDns()
            .Timeout("example.com")
            .Txt("example.net", "v=spf1 -all exp=exp.example.net")
            .Txt("a.example.net", "v=spf1 -all exp=exp.example.net")
            .Txt("exp.example.net", "%{l}")
            .Txt("a12345678901234567890123456789012345678901234567890123456789012.example.com", "v=spf1 -all")
            .Txt("hosed.example.com", "v=spf1 a:\uFEFFgarbage.example.net -all")
            .Txt("hosed2.example.com", "v=spf1 \u0080a:example.net -all")
            .Txt("hosed3.example.com", "v=spf1 a:example.net \u0096all")
            .Txt("nothosed.example.com", "v=spf1 a:example.net -all", "\u0096")
            .Txt("ctrl.example.com", "v=spf1 a:ctrl.example.com\rptr -all").A("ctrl.example.com", "192.0.2.3")
            .Txt("fine.example.com", "v=spf1 a  -all"),
        ["lookup"] = () => new ZoneDns()
            .Txt("both.example.net", "v=spf1 -all")
            .Txt("txtonly.example.net", "v=spf1 -all")
            .Exists("spfonly.example.net")
            .Txt("spftimeout.example.net", "v=spf1 -all")
            .Timeout("txttimeout.example.net")
            .Timeout("nospftxttimeout.example.net")
            .Timeout("alltimeout.example.net"),
        ["select"] = () => new ZoneDns()
            .Txt("example3.com", "v=spf10", "v=spf1 mx").Mx("example3.com", 0, "mail.example1.com")
            .Txt("example1.com", "v=spf1")
            .Txt("example2.com", "v=spf1" + "mx")
            .A("mail.example1.com", "1.2.3.4")
            .Txt("example4.com", "v=spf1 -all")
            .Txt("example5.com", "v=spf1 -all", "v=spf1 +all")
            .Txt("example6.com", "v=spf1 -all", "V=sPf1 +all")
            .Txt("example7.com", "v=spf1 -all", "v=spf1 -all")
            .Txt("example8.com", "v=spf1 +all")
            .Txt("example9.com", "v=SpF1 ~all"),
        ["eval"] = () => new ZoneDns()
            .A("mail.example.com", "1.2.3.4")
            .Txt("t1.example.com", "v=spf1 ip4:1.2.3.4 -all moo")
            .Txt("t2.example.com", "v=spf1 moo.cow-far_out=man:dog/cat ip4:1.2.3.4 -all")
            .Txt("t3.example.com", "v=spf1 moo.cow/far_out=man:dog/cat ip4:1.2.3.4 -all")
            .Txt("t4.example.com", "v=spf1 moo.cow:far_out=man:dog/cat ip4:1.2.3.4 -all")
            .Txt("t5.example.com", "v=spf1 redirect=t5.example.com ~all")
            .Txt("t6.example.com", "v=spf1 ip4:1.2.3.4 redirect=t2.example.com")
            .Txt("t7.example.com", "v=spf1 ip4:1.2.3.4")
            .Txt("t8.example.com", "v=spf1 ip4:1.2.3.4 redirect:t2.example.com")
            .Txt("t9.example.com", "v=spf1 a:foo-bar -all")
            .Txt("t10.example.com", "v=spf1 a:mail.example...com -all")
            .Txt("t11.example.com", "v=spf1 a:a123456789012345678901234567890123456789012345678901234567890123.example.com -all")
            .Txt("t12.example.com", "v=spf1 a:%{H}.bar -all"),
        ["all"] = () => new ZoneDns()
            .A("mail.example.com", "1.2.3.4")
            .Txt("e1.example.com", "v=spf1 -all.")
            .Txt("e2.example.com", "v=spf1 -all:foobar")
            .Txt("e3.example.com", "v=spf1 -all/8")
            .Txt("e4.example.com", "v=spf1 ?all")
            .Txt("e5.example.com", "v=spf1 all -all"),
        ["ptr"] = () => new ZoneDns()
            .A("mail.example.com", "1.2.3.4", "2001:db8::1")
            .Txt("e1.example.com", "v=spf1 ptr/0 -all")
            .Txt("e2.example.com", "v=spf1 ptr:example.com -all")
            .Ptr("1.2.3.4", "e3.example.com", "e4.example.com", "mail.example.com")
            .Ptr("CAFE:BABE::1", "e3.example.com")
            .Ptr("2001:db8::1", "mail.Example.com")
            .Txt("e3.example.com", "v=spf1 ptr -all").A("e3.example.com", "1.2.3.4", "CAFE:BABE::1")
            .Txt("e4.example.com", "v=spf1 ptr -all")
            .Txt("e5.example.com", "v=spf1 ptr:")
            .Txt("e6.example.com", "v=spf1 ptr:example.Com -all"),
        ["a"] = () => new ZoneDns()
            .A("mail.example.com", "1.2.3.4")
            .Txt("e1.example.com", "v=spf1 a/0 -all")
            .A("e2.example.com", "1.1.1.1", "1234::2").Txt("e2.example.com", "v=spf1 a/0 -all")
            .A("e2a.example.com", "1234::1").Txt("e2a.example.com", "v=spf1 a//0 -all")
            .A("e2b.example.com", "1.1.1.1").Txt("e2b.example.com", "v=spf1 a//0 -all")
            .A("ipv6.example.com", "1234::1", "1.1.1.1").Txt("ipv6.example.com", "v=spf1 a -all")
            .Txt("e3.example.com", "v=spf1 a:foo.example.com\0")
            .Txt("e4.example.com", "v=spf1 a:111.222.33.44")
            .Txt("e5.example.com", "v=spf1 a:abc.123")
            .Txt("e5a.example.com", "v=spf1 a:museum")
            .Txt("e5b.example.com", "v=spf1 a:museum.")
            .Txt("e6.example.com", "v=spf1 a//33 -all")
            .Txt("e6a.example.com", "v=spf1 a/33 -all")
            .Txt("e7.example.com", "v=spf1 a//129 -all")
            .A("e8.example.com", "1.2.3.5", "2001:db8:1234::dead:beef").Txt("e8.example.com", "v=spf1 a/24//64 -all")
            .A("e8e.example.com", "1.2.3.5", "2001:db8:1234::dead:beef").Txt("e8e.example.com", "v=spf1 a/24/64 -all")
            .A("e8a.example.com", "1.2.3.5", "2001:db8:1234::dead:beef").Txt("e8a.example.com", "v=spf1 a/24 -all")
            .A("e8b.example.com", "1.2.3.5", "2001:db8:1234::dead:beef").Txt("e8b.example.com", "v=spf1 a//64 -all")
            .Txt("e9.example.com", "v=spf1 a:example.com:8080")
            .Txt("e10.example.com", "v=spf1 a:foo.example.com/24")
            .A("foo.example.com", "1.1.1.1", "1.2.3.5")
            .Txt("e11.example.com", "v=spf1 a:foo:bar/baz.example.com")
            .A("foo:bar/baz.example.com", "1.2.3.4")
            .Txt("e12.example.com", "v=spf1 a:example.-com")
            .Txt("e13.example.com", "v=spf1 a:")
            .Txt("e14.example.com", "v=spf1 a:foo.example.xn--zckzah -all")
            .A("foo.example.xn--zckzah", "1.2.3.4"),
        ["include"] = () => new ZoneDns()
            .A("mail.example.com", "1.2.3.4")
            .Txt("ip5.example.com", "v=spf1 ip4:1.2.3.5 -all")
            .Txt("ip6.example.com", "v=spf1 ip4:1.2.3.6 ~all")
            .Txt("ip7.example.com", "v=spf1 ip4:1.2.3.7 ?all")
            .Timeout("ip8.example.com")
            .Txt("erehwon.example.com", "v=spfl am not an SPF record")
            .Txt("e1.example.com", "v=spf1 include:ip5.example.com ~all")
            .Txt("e2.example.com", "v=spf1 include:ip6.example.com all")
            .Txt("e3.example.com", "v=spf1 include:ip7.example.com -all")
            .Txt("e4.example.com", "v=spf1 include:ip8.example.com -all")
            .Txt("e5.example.com", "v=spf1 include:e6.example.com -all")
            .Txt("e6.example.com", "v=spf1 include +all")
            .Txt("e7.example.com", "v=spf1 include:erehwon.example.com -all")
            .Txt("e8.example.com", "v=spf1 include: -all")
            .Txt("e9.example.com", "v=spf1 include:ip5.example.com/24 -all"),
        ["mx"] = () => new ZoneDns()
            .A("mail.example.com", "1.2.3.4").Mx("mail.example.com", 0, string.Empty).Txt("mail.example.com", "v=spf1 mx")
            .Txt("e1.example.com", "v=spf1 mx/0 -all").Mx("e1.example.com", 0, "e1.example.com")
            .A("e2.example.com", "1.1.1.1", "1234::2").Mx("e2.example.com", 0, "e2.example.com").Txt("e2.example.com", "v=spf1 mx/0 -all")
            .A("e2a.example.com", "1234::1").Mx("e2a.example.com", 0, "e2a.example.com").Txt("e2a.example.com", "v=spf1 mx//0 -all")
            .A("e2b.example.com", "1.1.1.1").Mx("e2b.example.com", 0, "e2b.example.com").Txt("e2b.example.com", "v=spf1 mx//0 -all")
            .Txt("e3.example.com", "v=spf1 mx:foo.example.com\0")
            .Txt("e4.example.com", "v=spf1 mx").A("e4.example.com", "1.2.3.4")
            .Txt("e5.example.com", "v=spf1 mx:abc.123")
            .Txt("e6.example.com", "v=spf1 mx//33 -all")
            .Txt("e6a.example.com", "v=spf1 mx/33 -all")
            .Txt("e7.example.com", "v=spf1 mx//129 -all")
            .Txt("e9.example.com", "v=spf1 mx:example.com:8080")
            .Txt("e10.example.com", "v=spf1 mx:foo.example.com/24")
            .Mx("foo.example.com", 0, "foo1.example.com")
            .A("foo1.example.com", "1.1.1.1", "1.2.3.5")
            .Txt("e11.example.com", "v=spf1 mx:foo:bar/baz.example.com")
            .Mx("foo:bar/baz.example.com", 0, "foo:bar/baz.example.com").A("foo:bar/baz.example.com", "1.2.3.4")
            .Txt("e12.example.com", "v=spf1 mx:example.-com")
            .Txt("e13.example.com", "v=spf1 mx: -all"),
        ["exists"] = () => new ZoneDns()
            .A("mail.example.com", "1.2.3.4")
            .A("mail6.example.com", "CAFE:BABE::4")
            .Timeout("err.example.com")
            .Txt("e1.example.com", "v=spf1 exists:")
            .Txt("e2.example.com", "v=spf1 exists")
            .Txt("e3.example.com", "v=spf1 exists:mail.example.com/24")
            .Txt("e4.example.com", "v=spf1 exists:mail.example.com")
            .Txt("e5.example.com", "v=spf1 exists:mail6.example.com -all")
            .Txt("e6.example.com", "v=spf1 exists:err.example.com -all"),
        ["ip4"] = () => new ZoneDns()
            .A("mail.example.com", "1.2.3.4")
            .Txt("e1.example.com", "v=spf1 ip4:1.1.1.1/0 -all")
            .Txt("e2.example.com", "v=spf1 ip4:1.2.3.4/32 -all")
            .Txt("e3.example.com", "v=spf1 ip4:1.2.3.4/33 -all")
            .Txt("e4.example.com", "v=spf1 ip4:1.2.3.4/032 -all")
            .Txt("e5.example.com", "v=spf1 ip4")
            .Txt("e6.example.com", "v=spf1 ip4:1.2.3.4//32")
            .Txt("e7.example.com", "v=spf1 -ip4:1.2.3.4 ip6:::FFFF:1.2.3.4")
            .Txt("e8.example.com", "v=spf1 ip4:1.2.3.4:8080")
            .Txt("e9.example.com", "v=spf1 ip4:1.2.3"),
        ["ip6"] = () => new ZoneDns()
            .A("mail.example.com", "1.2.3.4")
            .Txt("e1.example.com", "v=spf1 -all ip6")
            .Txt("e2.example.com", "v=spf1 ip6:::1.1.1.1/0")
            .Txt("e3.example.com", "v=spf1 ip6:::1.1.1.1/129")
            .Txt("e4.example.com", "v=spf1 ip6:::1.1.1.1//33")
            .Txt("e5.example.com", "v=spf1 ip6:Cafe:Babe:8000::/33")
            .Txt("e6.example.com", "v=spf1 ip6::CAFE::BABE"),
        ["modifiers"] = () => new ZoneDns()
            .A("mail.example.com", "1.2.3.4")
            .Txt("e1.example.com", "v=spf1 exp=exp1.example.com redirect=e2.example.com")
            .Txt("e2.example.com", "v=spf1 -all")
            .Txt("e3.example.com", "v=spf1 exp=exp1.example.com redirect=e4.example.com")
            .Txt("e4.example.com", "v=spf1 -all exp=exp2.example.com")
            .Txt("exp1.example.com", "No-see-um")
            .Txt("exp2.example.com", "See me.")
            .Txt("exp3.example.com", "Correct!")
            .Txt("exp4.example.com", "%{l} in implementation")
            .Txt("e5.example.com", "v=spf1 1up=foo")
            .Txt("e6.example.com", "v=spf1 =all")
            .Txt("e7.example.com", "v=spf1 include:e3.example.com -all exp=exp3.example.com")
            .Txt("e8.example.com", "v=spf1 -all exp=exp4.example.com")
            .Txt("e9.example.com", "v=spf1 -all foo=%abc")
            .Txt("e10.example.com", "v=spf1 redirect=erehwon.example.com")
            .Txt("e11.example.com", "v=spf1 -all exp=e11msg.example.com")
            .Txt("e11msg.example.com", "Answer a fool according to his folly.", "Do not answer a fool according to his folly.")
            .Txt("e12.example.com", "v=spf1 exp= -all")
            .Txt("e13.example.com", "v=spf1 exp=e13msg.example.com -all")
            .Txt("e13msg.example.com", "The %{x}-files.")
            .Txt("e14.example.com", "v=spf1 exp=e13msg.example.com -all exp=e11msg.example.com")
            .Txt("e15.example.com", "v=spf1 redirect=e12.example.com -all redirect=e12.example.com")
            .Txt("e16.example.com", "v=spf1 exp=-all")
            .Txt("e17.example.com", "v=spf1 redirect=-all ?all")
            .Txt("e18.example.com", "v=spf1 ?all redirect=")
            .Txt("e19.example.com", "v=spf1 default=pass")
            .Txt("e20.example.com", "v=spf1 default=+")
            .Txt("e21.example.com", "v=spf1 exp=e21msg.example.com -all")
            .Timeout("e21msg.example.com")
            .Txt("e22.example.com", "v=spf1 exp=mail.example.com -all")
            .Txt("e23.example.com", "v=spf1 a:erehwon.example.com a:foobar.com exp=nxdomain.com -all")
            .Txt("e24.example.com", "v=spf1 redirect=testimplicit.example.com").A("e24.example.com", "192.0.2.1")
            .Txt("testimplicit.example.com", "v=spf1 a -all").A("testimplicit.example.com", "192.0.2.2"),
        ["macros"] = () => new ZoneDns()
            .Txt("example.com.d.spf.example.com", "v=spf1 redirect=a.spf.example.com")
            .Txt("a.spf.example.com", "v=spf1 include:o.spf.example.com. ~all")
            .Txt("o.spf.example.com", "v=spf1 ip4:192.168.218.40")
            .A("msgbas2x.cos.example.com", "192.168.218.40")
            .A("example.com", "192.168.90.76").Txt("example.com", "v=spf1 redirect=%{d}.d.spf.example.com.")
            .Txt("exp.example.com", "v=spf1 exp=msg.example.com. -all")
            .Txt("msg.example.com", "This is a test.")
            .Txt("e1.example.com", "v=spf1 -exists:%(ir).sbl.example.com ?all")
            .Txt("e1e.example.com", "v=spf1 exists:foo%(ir).sbl.example.com ?all")
            .Txt("e1t.example.com", "v=spf1 exists:foo%.sbl.example.com ?all")
            .Txt("e1a.example.com", "v=spf1 a:macro%%percent%_%_space%-url-space.example.com -all")
            .A("macro%percent  space%20url-space.example.com", "1.2.3.4")
            .Txt("e2.example.com", "v=spf1 -all exp=%{r}.example.com")
            .Txt("e3.example.com", "v=spf1 -all exp=%{ir}.example.com")
            .Txt("40.218.168.192.example.com", "Connections from %{c} not authorized.")
            .Txt("somewhat.long.exp.example.com", "v=spf1 -all exp=foobar.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.example.com")
            .Txt("e4.example.com", "v=spf1 -all exp=e4msg.example.com")
            .Txt("e4msg.example.com", "%{c} is queried as %{ir}.%{v}.arpa")
            .Txt("e5.example.com", "v=spf1 a:%{a}.example.com -all")
            .Txt("e6.example.com", "v=spf1 -all exp=e6msg.example.com")
            .Txt("e6msg.example.com", "connect from %{p}")
            .A("mx.example.com", "192.168.218.41", "192.168.218.42", "CAFE:BABE::2", "CAFE:BABE::3")
            .Ptr("192.168.218.40", "mx.example.com")
            .Ptr("192.168.218.41", "mx.example.com")
            .Ptr("192.168.218.42", "mx.example.com", "mx.e7.example.com")
            .Ptr("CAFE:BABE::1", "mx.example.com")
            .Ptr("CAFE:BABE::3", "mx.example.com")
            .A("mx.e7.example.com", "192.168.218.42")
            .A("mx.e7.example.com.should.example.com", "127.0.0.2")
            .A("mx.example.com.ok.example.com", "127.0.0.2")
            .Txt("e7.example.com", "v=spf1 exists:%{p}.should.example.com ~exists:%{p}.ok.example.com")
            .Txt("e8.example.com", "v=spf1 -all exp=msg8.%{D2}")
            .Txt("msg8.example.com", "http://example.com/why.html?l=%{L}")
            .Txt("e9.example.com", "v=spf1 a:%{H} -all")
            .Txt("e10.example.com", "v=spf1 -include:_spfh.%{d2} ip4:1.2.3.0/24 -all")
            .Txt("_spfh.example.com", "v=spf1 -a:%{h} +all")
            .Txt("e11.example.com", "v=spf1 exists:%{i}.%{l2r-}.user.%{d2}")
            .A("1.2.3.4.gladstone.philip.user.example.com", "127.0.0.2")
            .Txt("e12.example.com", "v=spf1 exists:%{l2r+-}.user.%{d2}")
            .A("bar.foo.user.example.com", "127.0.0.2"),
        ["limits"] = () => new ZoneDns()
            .A("mail.example.com", "1.2.3.4")
            .Txt("e1.example.com", "v=spf1 ip4:1.1.1.1 redirect=e1.example.com").A("e1.example.com", "1.2.3.6")
            .Txt("e2.example.com", "v=spf1 include:e3.example.com").A("e2.example.com", "1.2.3.7")
            .Txt("e3.example.com", "v=spf1 include:e2.example.com").A("e3.example.com", "1.2.3.8")
            .Txt("e4.example.com", "v=spf1 mx").A("e4.example.com", "1.2.3.5")
            .Mx("e4.example.com", 0, "mail.example.com").Mx("e4.example.com", 1, "mail.example.com").Mx("e4.example.com", 2, "mail.example.com")
            .Mx("e4.example.com", 3, "mail.example.com").Mx("e4.example.com", 4, "mail.example.com").Mx("e4.example.com", 5, "mail.example.com")
            .Mx("e4.example.com", 6, "mail.example.com").Mx("e4.example.com", 7, "mail.example.com").Mx("e4.example.com", 8, "mail.example.com")
            .Mx("e4.example.com", 9, "mail.example.com").Mx("e4.example.com", 10, "e4.example.com")
            .Txt("e5.example.com", "v=spf1 ptr").A("e5.example.com", "1.2.3.5")
            .Ptr("1.2.3.5", "e1.example.com", "e2.example.com", "e3.example.com", "e4.example.com", "example.com", "e6.example.com",
                "e7.example.com", "e8.example.com", "e9.example.com", "e10.example.com", "e5.example.com")
            .Txt("e6.example.com", "v=spf1 a mx a mx a mx a mx a ptr ip4:1.2.3.4 -all").A("e6.example.com", "1.2.3.8").Mx("e6.example.com", 10, "e6.example.com")
            .Txt("e7.example.com", "v=spf1 a mx a mx a mx a mx a ptr a ip4:1.2.3.4 -all").A("e7.example.com", "1.2.3.20")
            .Txt("e8.example.com", "v=spf1 a include:inc.example.com ip4:1.2.3.4 mx -all").A("e8.example.com", "1.2.3.4")
            .Txt("inc.example.com", "v=spf1 a a a a a a a a").A("inc.example.com", "1.2.3.10")
            .Txt("e9.example.com", "v=spf1 a include:inc.example.com a ip4:1.2.3.4 -all").A("e9.example.com", "1.2.3.21")
            .Txt("e10.example.com", "v=spf1 a -all")
            .A("e10.example.com", "1.2.3.1", "1.2.3.2", "1.2.3.3", "1.2.3.4", "1.2.3.5", "1.2.3.6", "1.2.3.7", "1.2.3.8", "1.2.3.9", "1.2.3.10", "1.2.3.11", "1.2.3.12")
            .Txt("e11.example.com", "v=spf1 a:err.example.com a:err1.example.com a:err2.example.com ?all")
            .Txt("e12.example.com", "v=spf1 a:err.example.com a:err1.example.com ?all"),
    };

    /// <summary>section, case name, MAIL FROM, client address, HELO, accepted results ("|" between alternatives).</summary>
    public static TheoryData<string, string, string, string, string, string> Cases => new()
    {
        { "initial", "toolonglabel", "lyme.eater@A123456789012345678901234567890123456789012345678901234567890123.example.com", "1.2.3.5", "mail.example.net", "none" },
        { "initial", "longlabel", "lyme.eater@A12345678901234567890123456789012345678901234567890123456789012.example.com", "1.2.3.5", "mail.example.net", "fail" },
        { "initial", "emptylabel", "lyme.eater@A...example.com", "1.2.3.5", "mail.example.net", "none" },
        { "initial", "helo-not-fqdn", "", "1.2.3.5", "A2345678", "none" },
        { "initial", "helo-domain-literal", "", "1.2.3.5", "[1.2.3.5]", "none" },
        { "initial", "nolocalpart", "@example.net", "1.2.3.4", "mail.example.net", "fail" },
        { "initial", "domain-literal", "foo@[1.2.3.5]", "1.2.3.5", "OEMCOMPUTER", "none" },
        { "initial", "non-ascii-policy", "foobar@hosed.example.com", "1.2.3.4", "hosed", "permerror" },
        { "initial", "non-ascii-mech", "foobar@hosed2.example.com", "1.2.3.4", "hosed", "permerror" },
        { "initial", "non-ascii-result", "foobar@hosed3.example.com", "1.2.3.4", "hosed", "permerror" },
        { "initial", "non-ascii-non-spf", "foobar@nothosed.example.com", "1.2.3.4", "hosed", "fail" },
        { "initial", "control-char-policy", "foobar@ctrl.example.com", "192.0.2.3", "hosed", "permerror" },
        { "initial", "two-spaces", "actually@fine.example.com", "1.2.3.4", "hosed", "fail" },
        { "lookup", "both", "foo@both.example.net", "1.2.3.4", "mail.example.net", "fail" },
        { "lookup", "txtonly", "foo@txtonly.example.net", "1.2.3.4", "mail.example.net", "fail" },
        { "lookup", "spfonly", "foo@spfonly.example.net", "1.2.3.4", "mail.example.net", "none" },
        { "lookup", "spftimeout", "foo@spftimeout.example.net", "1.2.3.4", "mail.example.net", "fail" },
        { "lookup", "txttimeout", "foo@txttimeout.example.net", "1.2.3.4", "mail.example.net", "temperror" },
        { "lookup", "nospftxttimeout", "foo@nospftxttimeout.example.net", "1.2.3.4", "mail.example.net", "temperror" },
        { "lookup", "alltimeout", "foo@alltimeout.example.net", "1.2.3.4", "mail.example.net", "temperror" },
        { "select", "nospace1", "foo@example2.com", "1.2.3.4", "mail.example1.com", "none" },
        { "select", "empty", "foo@example1.com", "1.2.3.4", "mail1.example1.com", "neutral" },
        { "select", "nospace2", "foo@example3.com", "1.2.3.4", "mail.example1.com", "pass" },
        { "select", "spfoverride", "foo@example4.com", "1.2.3.4", "mail.example1.com", "fail" },
        { "select", "multitxt1", "foo@example5.com", "1.2.3.4", "mail.example1.com", "permerror" },
        { "select", "multitxt2", "foo@example6.com", "1.2.3.4", "mail.example1.com", "permerror" },
        { "select", "multispf1", "foo@example7.com", "1.2.3.4", "mail.example1.com", "permerror|fail" },
        { "select", "multispf2", "foo@example8.com", "1.2.3.4", "mail.example1.com", "pass" },
        { "select", "nospf", "foo@mail.example1.com", "1.2.3.4", "mail.example1.com", "none" },
        { "select", "case-insensitive", "foo@example9.com", "1.2.3.4", "mail.example1.com", "softfail" },
        { "eval", "detect-errors-anywhere", "foo@t1.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "eval", "modifier-charset-good", "foo@t2.example.com", "1.2.3.4", "mail.example.com", "pass" },
        { "eval", "modifier-charset-bad1", "foo@t3.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "eval", "modifier-charset-bad2", "foo@t4.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "eval", "redirect-after-mechanisms1", "foo@t5.example.com", "1.2.3.4", "mail.example.com", "softfail" },
        { "eval", "redirect-after-mechanisms2", "foo@t6.example.com", "1.2.3.5", "mail.example.com", "fail" },
        { "eval", "default-result", "foo@t7.example.com", "1.2.3.5", "mail.example.com", "neutral" },
        { "eval", "redirect-is-modifier", "foo@t8.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "eval", "invalid-domain", "foo@t9.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "eval", "invalid-domain-empty-label", "foo@t10.example.com", "1.2.3.4", "mail.example.com", "fail|permerror" },
        { "eval", "invalid-domain-long", "foo@t11.example.com", "1.2.3.4", "mail.example.com", "fail|permerror" },
        { "eval", "invalid-domain-long-via-macro", "foo@t12.example.com", "1.2.3.4", "%%%%%%%%%%%%%%%%%%%%%%", "fail|permerror" },
        { "all", "all-dot", "foo@e1.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "all", "all-arg", "foo@e2.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "all", "all-cidr", "foo@e3.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "all", "all-neutral", "foo@e4.example.com", "1.2.3.4", "mail.example.com", "neutral" },
        { "all", "all-double", "foo@e5.example.com", "1.2.3.4", "mail.example.com", "pass" },
        { "ptr", "ptr-cidr", "foo@e1.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "ptr", "ptr-match-target", "foo@e2.example.com", "1.2.3.4", "mail.example.com", "pass" },
        { "ptr", "ptr-match-implicit", "foo@e3.example.com", "1.2.3.4", "mail.example.com", "pass" },
        { "ptr", "ptr-nomatch-invalid", "foo@e4.example.com", "1.2.3.4", "mail.example.com", "fail" },
        { "ptr", "ptr-match-ip6", "foo@e3.example.com", "CAFE:BABE::1", "mail.example.com", "pass" },
        { "ptr", "ptr-empty-domain", "foo@e5.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "ptr", "ptr-case-change", "bar@e6.example.com", "2001:db8::1", "mail.example.com", "pass" },
        { "a", "a-cidr6", "foo@e6.example.com", "1.2.3.4", "mail.example.com", "fail" },
        { "a", "a-bad-cidr4", "foo@e6a.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "a", "a-bad-cidr6", "foo@e7.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "a", "a-dual-cidr-ip4-match", "foo@e8.example.com", "1.2.3.4", "mail.example.com", "pass" },
        { "a", "a-dual-cidr-ip4-err", "foo@e8e.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "a", "a-dual-cidr-ip6-match", "foo@e8.example.com", "2001:db8:1234::cafe:babe", "mail.example.com", "pass" },
        { "a", "a-dual-cidr-ip4-default", "foo@e8b.example.com", "1.2.3.4", "mail.example.com", "fail" },
        { "a", "a-dual-cidr-ip6-default", "foo@e8a.example.com", "2001:db8:1234::cafe:babe", "mail.example.com", "fail" },
        { "a", "a-multi-ip1", "foo@e10.example.com", "1.2.3.4", "mail.example.com", "pass" },
        { "a", "a-bad-domain", "foo@e9.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "a", "a-nxdomain", "foo@e1.example.com", "1.2.3.4", "mail.example.com", "fail" },
        { "a", "a-cidr4-0", "foo@e2.example.com", "1.2.3.4", "mail.example.com", "pass" },
        { "a", "a-cidr4-0-ip6", "foo@e2.example.com", "1234::1", "mail.example.com", "fail" },
        { "a", "a-cidr6-0-ip4", "foo@e2a.example.com", "1.2.3.4", "mail.example.com", "fail" },
        { "a", "a-cidr6-0-ip4mapped", "foo@e2a.example.com", "::FFFF:1.2.3.4", "mail.example.com", "fail" },
        { "a", "a-cidr6-0-ip6", "foo@e2a.example.com", "1234::1", "mail.example.com", "pass" },
        { "a", "a-ip6-dualstack", "foo@ipv6.example.com", "1234::1", "mail.example.com", "pass" },
        { "a", "a-cidr6-0-nxdomain", "foo@e2b.example.com", "1234::1", "mail.example.com", "fail" },
        { "a", "a-null", "foo@e3.example.com", "1.2.3.5", "mail.example.com", "permerror" },
        { "a", "a-numeric", "foo@e4.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "a", "a-numeric-toplabel", "foo@e5.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "a", "a-dash-in-toplabel", "foo@e14.example.com", "1.2.3.4", "mail.example.com", "pass" },
        { "a", "a-bad-toplabel", "foo@e12.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "a", "a-only-toplabel", "foo@e5a.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "a", "a-only-toplabel-trailing-dot", "foo@e5b.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "a", "a-colon-domain", "foo@e11.example.com", "1.2.3.4", "mail.example.com", "pass" },
        { "a", "a-colon-domain-ip4mapped", "foo@e11.example.com", "::FFFF:1.2.3.4", "mail.example.com", "pass" },
        { "a", "a-empty-domain", "foo@e13.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "include", "include-fail", "foo@e1.example.com", "1.2.3.4", "mail.example.com", "softfail" },
        { "include", "include-softfail", "foo@e2.example.com", "1.2.3.4", "mail.example.com", "pass" },
        { "include", "include-neutral", "foo@e3.example.com", "1.2.3.4", "mail.example.com", "fail" },
        { "include", "include-temperror", "foo@e4.example.com", "1.2.3.4", "mail.example.com", "temperror" },
        { "include", "include-permerror", "foo@e5.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "include", "include-syntax-error", "foo@e6.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "include", "include-cidr", "foo@e9.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "include", "include-none", "foo@e7.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "include", "include-empty-domain", "foo@e8.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "mx", "mx-cidr6", "foo@e6.example.com", "1.2.3.4", "mail.example.com", "fail" },
        { "mx", "mx-bad-cidr4", "foo@e6a.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "mx", "mx-bad-cidr6", "foo@e7.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "mx", "mx-multi-ip1", "foo@e10.example.com", "1.2.3.4", "mail.example.com", "pass" },
        { "mx", "mx-bad-domain", "foo@e9.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "mx", "mx-nxdomain", "foo@e1.example.com", "1.2.3.4", "mail.example.com", "fail" },
        { "mx", "mx-cidr4-0", "foo@e2.example.com", "1.2.3.4", "mail.example.com", "pass" },
        { "mx", "mx-cidr4-0-ip6", "foo@e2.example.com", "1234::1", "mail.example.com", "fail" },
        { "mx", "mx-cidr6-0-ip4", "foo@e2a.example.com", "1.2.3.4", "mail.example.com", "fail" },
        { "mx", "mx-cidr6-0-ip4mapped", "foo@e2a.example.com", "::FFFF:1.2.3.4", "mail.example.com", "fail" },
        { "mx", "mx-cidr6-0-ip6", "foo@e2a.example.com", "1234::1", "mail.example.com", "pass" },
        { "mx", "mx-cidr6-0-nxdomain", "foo@e2b.example.com", "1234::1", "mail.example.com", "fail" },
        { "mx", "mx-null", "foo@e3.example.com", "1.2.3.5", "mail.example.com", "permerror" },
        { "mx", "mx-numeric-top-label", "foo@e5.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "mx", "mx-colon-domain", "foo@e11.example.com", "1.2.3.4", "mail.example.com", "pass" },
        { "mx", "mx-colon-domain-ip4mapped", "foo@e11.example.com", "::FFFF:1.2.3.4", "mail.example.com", "pass" },
        { "mx", "mx-bad-toplab", "foo@e12.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "mx", "mx-empty", "", "1.2.3.4", "mail.example.com", "neutral" },
        { "mx", "mx-implicit", "foo@e4.example.com", "1.2.3.4", "mail.example.com", "neutral" },
        { "mx", "mx-empty-domain", "foo@e13.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "exists", "exists-empty-domain", "foo@e1.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "exists", "exists-implicit", "foo@e2.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "exists", "exists-cidr", "foo@e3.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "exists", "exists-ip4", "foo@e4.example.com", "1.2.3.4", "mail.example.com", "pass" },
        { "exists", "exists-ip6", "foo@e4.example.com", "CAFE:BABE::3", "mail.example.com", "pass" },
        { "exists", "exists-ip6only", "foo@e5.example.com", "CAFE:BABE::3", "mail.example.com", "fail" },
        { "exists", "exists-dnserr", "foo@e6.example.com", "CAFE:BABE::3", "mail.example.com", "temperror" },
        { "ip4", "cidr4-0", "foo@e1.example.com", "1.2.3.4", "mail.example.com", "pass" },
        { "ip4", "cidr4-32", "foo@e2.example.com", "1.2.3.4", "mail.example.com", "pass" },
        { "ip4", "cidr4-33", "foo@e3.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "ip4", "cidr4-032", "foo@e4.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "ip4", "bare-ip4", "foo@e5.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "ip4", "bad-ip4-port", "foo@e8.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "ip4", "bad-ip4-short", "foo@e9.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "ip4", "ip4-dual-cidr", "foo@e6.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "ip4", "ip4-mapped-ip6", "foo@e7.example.com", "::FFFF:1.2.3.4", "mail.example.com", "fail" },
        { "ip6", "bare-ip6", "foo@e1.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "ip6", "cidr6-0-ip4", "foo@e2.example.com", "1.2.3.4", "mail.example.com", "neutral" },
        { "ip6", "cidr6-ip4", "foo@e2.example.com", "::FFFF:1.2.3.4", "mail.example.com", "neutral" },
        { "ip6", "cidr6-0", "foo@e2.example.com", "DEAF:BABE::CAB:FEE", "mail.example.com", "pass" },
        { "ip6", "cidr6-129", "foo@e3.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "ip6", "cidr6-bad", "foo@e4.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "ip6", "cidr6-33", "foo@e5.example.com", "CAFE:BABE:8000::", "mail.example.com", "pass" },
        { "ip6", "cidr6-33-ip4", "foo@e5.example.com", "1.2.3.4", "mail.example.com", "neutral" },
        { "ip6", "ip6-bad1", "foo@e6.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "modifiers", "redirect-none", "foo@e10.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "modifiers", "redirect-cancels-exp", "foo@e1.example.com", "1.2.3.4", "mail.example.com", "fail" },
        { "modifiers", "redirect-syntax-error", "foo@e17.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "modifiers", "include-ignores-exp", "foo@e7.example.com", "1.2.3.4", "mail.example.com", "fail" },
        { "modifiers", "redirect-cancels-prior-exp", "foo@e3.example.com", "1.2.3.4", "mail.example.com", "fail" },
        { "modifiers", "invalid-modifier", "foo@e5.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "modifiers", "empty-modifier-name", "foo@e6.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "modifiers", "dorky-sentinel", "Macro Error@e8.example.com", "1.2.3.4", "mail.example.com", "fail" },
        { "modifiers", "exp-multiple-txt", "foo@e11.example.com", "1.2.3.4", "mail.example.com", "fail" },
        { "modifiers", "exp-no-txt", "foo@e22.example.com", "1.2.3.4", "mail.example.com", "fail" },
        { "modifiers", "exp-dns-error", "foo@e21.example.com", "1.2.3.4", "mail.example.com", "fail" },
        { "modifiers", "exp-empty-domain", "foo@e12.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "modifiers", "explanation-syntax-error", "foo@e13.example.com", "1.2.3.4", "mail.example.com", "fail" },
        { "modifiers", "exp-syntax-error", "foo@e16.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "modifiers", "exp-twice", "foo@e14.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "modifiers", "redirect-empty-domain", "foo@e18.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "modifiers", "redirect-twice", "foo@e15.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "modifiers", "unknown-modifier-syntax", "foo@e9.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "modifiers", "default-modifier-obsolete", "foo@e19.example.com", "1.2.3.4", "mail.example.com", "neutral" },
        { "modifiers", "default-modifier-obsolete2", "foo@e20.example.com", "1.2.3.4", "mail.example.com", "neutral" },
        { "modifiers", "exp-void", "foo@e23.example.com", "1.2.3.4", "mail.example.com", "fail" },
        { "modifiers", "redirect-implicit", "bar@e24.example.com", "192.0.2.2", "e24.example.com", "pass" },
        { "macros", "trailing-dot-domain", "test@example.com", "192.168.218.40", "msgbas2x.cos.example.com", "pass" },
        { "macros", "trailing-dot-exp", "test@exp.example.com", "192.168.218.40", "msgbas2x.cos.example.com", "fail" },
        { "macros", "exp-only-macro-char", "test@e2.example.com", "192.168.218.40", "msgbas2x.cos.example.com", "permerror" },
        { "macros", "invalid-macro-char", "test@e1.example.com", "192.168.218.40", "msgbas2x.cos.example.com", "permerror" },
        { "macros", "invalid-embedded-macro-char", "test@e1e.example.com", "192.168.218.40", "msgbas2x.cos.example.com", "permerror" },
        { "macros", "invalid-trailing-macro-char", "test@e1t.example.com", "192.168.218.40", "msgbas2x.cos.example.com", "permerror" },
        { "macros", "macro-mania-in-domain", "test@e1a.example.com", "1.2.3.4", "mail.example.com", "pass" },
        { "macros", "exp-txt-macro-char", "test@e3.example.com", "192.168.218.40", "msgbas2x.cos.example.com", "fail" },
        { "macros", "domain-name-truncation", "test@somewhat.long.exp.example.com", "192.168.218.40", "msgbas2x.cos.example.com", "fail" },
        { "macros", "v-macro-ip4", "test@e4.example.com", "192.168.218.40", "msgbas2x.cos.example.com", "fail" },
        { "macros", "v-macro-ip6", "test@e4.example.com", "CAFE:BABE::1", "msgbas2x.cos.example.com", "fail" },
        { "macros", "undef-macro", "test@e5.example.com", "CAFE:BABE::192.168.218.40", "msgbas2x.cos.example.com", "permerror" },
        { "macros", "p-macro-ip4-novalid", "test@e6.example.com", "192.168.218.40", "msgbas2x.cos.example.com", "fail" },
        { "macros", "p-macro-ip4-valid", "test@e6.example.com", "192.168.218.41", "msgbas2x.cos.example.com", "fail" },
        { "macros", "p-macro-multiple", "test@e7.example.com", "192.168.218.42", "msgbas2x.cos.example.com", "pass|softfail" },
        { "macros", "upper-macro", "~jack&jill=up-a_b3.c@e8.example.com", "192.168.218.42", "msgbas2x.cos.example.com", "fail" },
        { "macros", "hello-macro", "test@e9.example.com", "192.168.218.40", "msgbas2x.cos.example.com", "pass" },
        { "macros", "invalid-hello-macro", "test@e9.example.com", "192.168.218.40", "JUMPIN' JUPITER", "fail" },
        { "macros", "hello-domain-literal", "test@e9.example.com", "192.168.218.40", "[192.168.218.40]", "fail" },
        { "macros", "require-valid-helo", "test@e10.example.com", "1.2.3.4", "OEMCOMPUTER", "fail" },
        { "macros", "macro-reverse-split-on-dash", "philip-gladstone-test@e11.example.com", "1.2.3.4", "mail.example.com", "pass" },
        { "macros", "macro-multiple-delimiters", "foo-bar+zip+quux@e12.example.com", "1.2.3.4", "mail.example.com", "pass" },
        { "limits", "redirect-loop", "foo@e1.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "limits", "include-loop", "foo@e2.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "limits", "mx-limit", "foo@e4.example.com", "1.2.3.5", "mail.example.com", "permerror" },
        { "limits", "ptr-limit", "foo@e5.example.com", "1.2.3.5", "mail.example.com", "neutral|pass" },
        { "limits", "false-a-limit", "foo@e10.example.com", "1.2.3.12", "mail.example.com", "pass" },
        { "limits", "mech-at-limit", "foo@e6.example.com", "1.2.3.4", "mail.example.com", "pass" },
        { "limits", "mech-over-limit", "foo@e7.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "limits", "include-at-limit", "foo@e8.example.com", "1.2.3.4", "mail.example.com", "pass" },
        { "limits", "include-over-limit", "foo@e9.example.com", "1.2.3.4", "mail.example.com", "permerror" },
        { "limits", "void-at-limit", "foo@e12.example.com", "1.2.3.4", "mail.example.com", "neutral" },
        { "limits", "void-over-limit", "foo@e11.example.com", "1.2.3.4", "mail.example.com", "permerror" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task CheckHost_Rfc7208SuiteCase_ResultAccepted(string section, string name, string mailFrom, string host, string helo, string expected)
    {
        var evaluator = new SpfEvaluator(Sections[section]());

        // The suite checks MAIL FROM, or the HELO identity when MAIL FROM is empty (RFC 7208 §2.4).
        var domain = mailFrom.Length == 0 ? helo : mailFrom[(mailFrom.LastIndexOf('@') + 1)..];
        var sender = mailFrom.Length == 0 ? "postmaster@" + helo : mailFrom;
        var result = await evaluator.CheckHostAsync(IPAddress.Parse(host), domain, sender, helo);

        var accepted = expected.Split('|');
        Assert.True(accepted.Contains(result.Result.ToString(), StringComparer.OrdinalIgnoreCase),
            $"{section}/{name}: expected {expected}, got {result.Result} ({result.Problem})");
    }

    [Fact]
    public async Task CheckHost_LimitsExceeded_ProblemSaysWhy()
    {
        var limits = Sections["limits"];
        var loop = await new SpfEvaluator(limits()).CheckHostAsync(IPAddress.Parse("1.2.3.4"), "e2.example.com", "foo@e2.example.com");
        Assert.Equal(SpfResult.PermError, loop.Result);
        Assert.Contains("more than 10 DNS lookups", loop.Problem, StringComparison.Ordinal);
        Assert.Contains("loop", loop.Problem, StringComparison.Ordinal);
        Assert.Equal(11, loop.DnsLookups);

        var voids = await new SpfEvaluator(limits()).CheckHostAsync(IPAddress.Parse("1.2.3.4"), "e11.example.com", "foo@e11.example.com");
        Assert.Equal(SpfResult.PermError, voids.Result);
        Assert.Contains("more than 2 lookups found nothing", voids.Problem, StringComparison.Ordinal);
        Assert.Equal(3, voids.VoidLookups);

        var mx = await new SpfEvaluator(limits()).CheckHostAsync(IPAddress.Parse("1.2.3.5"), "e4.example.com", "foo@e4.example.com");
        Assert.Contains("11 MX records", mx.Problem, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("192.0.2.10", "192.0.2.0", 24, true)]
    [InlineData("192.0.3.10", "192.0.2.0", 24, false)]
    [InlineData("192.0.2.10", "192.0.2.11", 31, true)]
    [InlineData("192.0.2.10", "192.0.2.12", 31, false)]
    [InlineData("192.0.2.10", "0.0.0.0", 0, true)]
    [InlineData("2001:db8::1", "2001:db8::", 32, true)]
    [InlineData("2001:db9::1", "2001:db8::", 32, false)]
    [InlineData("192.0.2.10", "2001:db8::", 0, false)]
    public void InPrefix_ComparesLeadingBits(string ip, string network, int prefix, bool expected) =>
        Assert.Equal(expected, SpfEvaluator.InPrefix(IPAddress.Parse(ip), IPAddress.Parse(network), prefix));
}
