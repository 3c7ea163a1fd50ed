namespace Gateway.Core.Dkim;

/// <summary>Settings of <c>Gateway:Dkim</c>.</summary>
public sealed class DkimOptions
{
    public const string Section = "Gateway:Dkim";

    /// <summary>
    /// How long the previous key's record must stay published after a switch: longer than mail signed with it can wait in
    /// the queue (<c>Gateway:Queue:MaxLifetime</c>, 10 days) plus a margin for receivers that verify late.
    /// </summary>
    public TimeSpan RetiredKeyKeepTime { get; set; } = TimeSpan.FromDays(14);
}
