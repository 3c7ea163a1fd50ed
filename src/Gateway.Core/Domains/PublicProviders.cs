namespace Gateway.Core.Domains;

/// <summary>
/// Public mailbox providers: their users' mail is not the customer's to relay, so no tenant may
/// register them or their subdomains (requirements §3). Configuration (<c>Gateway:PublicProviders</c>) replaces this list.
/// </summary>
public static class PublicProviders
{
    public static readonly IReadOnlyList<string> Default =
    [
        "gmail.com", "googlemail.com", "google.com",
        "yahoo.com", "yahoo.co.jp", "yahoo.co.uk", "ymail.com", "rocketmail.com",
        "outlook.com", "outlook.jp", "hotmail.com", "hotmail.co.jp", "hotmail.co.uk", "live.com", "live.jp", "msn.com",
        "icloud.com", "me.com", "mac.com",
        "aol.com", "aim.com",
        "gmx.com", "gmx.net", "gmx.de", "web.de", "mail.com",
        "yandex.com", "yandex.ru", "mail.ru",
        "proton.me", "protonmail.com", "pm.me",
        "zoho.com", "zohomail.com",
        "fastmail.com", "tutanota.com", "tuta.io",
        "qq.com", "163.com", "126.com", "naver.com",
        "docomo.ne.jp", "ezweb.ne.jp", "au.com", "softbank.ne.jp", "i.softbank.jp",
    ];
}
