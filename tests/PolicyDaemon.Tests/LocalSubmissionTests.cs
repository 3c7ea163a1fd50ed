using System.Diagnostics;
using Gateway.Testing;

namespace PolicyDaemon.Tests;

/// <summary>
/// deploy/postfix has no pickup service (security review M13, docs/reliability.md "Hostile tenant"): a message a local
/// program submits with sendmail(1) never leaves the maildrop, so nothing on the host can relay past the policy.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class LocalSubmissionTests
{
    [Fact]
    public async Task Sendmail_OnTheDeployedPostfix_StaysInTheMaildrop_NeverQueued()
    {
        await using var postfix = await PostfixInstance.StartAsync();
        Assert.Equal(string.Empty, (await postfix.PostconfAsync(["-M", "pickup/unix"])).Trim());

        var psi = new ProcessStartInfo("/usr/sbin/sendmail") { RedirectStandardInput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-C", postfix.ConfigDirectory, "-f", "root@gateway.test", "victim@elsewhere.test" })
        {
            psi.ArgumentList.Add(a);
        }

        using (var p = Process.Start(psi)!)
        {
            await p.StandardInput.WriteAsync("From: root@gateway.test\nTo: victim@elsewhere.test\nSubject: local\n\nbody\n");
            p.StandardInput.Close();
            await p.WaitForExitAsync();
            Assert.True(p.ExitCode == 0, await p.StandardError.ReadToEndAsync());
        }

        var maildrop = Path.Combine(postfix.QueueDirectory, "maildrop");
        Assert.Single(Directory.GetFiles(maildrop));

        // With a pickup service the file is taken within a second (postdrop wakes it); give it five.
        await Task.Delay(TimeSpan.FromSeconds(5));
        Assert.Single(Directory.GetFiles(maildrop));
        foreach (var queue in new[] { "incoming", "active", "deferred", "hold" })
        {
            var dir = Path.Combine(postfix.QueueDirectory, queue);
            Assert.True(!Directory.Exists(dir) || Directory.GetFiles(dir, "*", SearchOption.AllDirectories).Length == 0, queue + " holds a message");
        }
    }
}
