using System.Diagnostics.CodeAnalysis;
using System.Text.Json.Serialization;

namespace Gateway.Core.Mail;

/// <summary>
/// Which way a message goes relative to the managed domain that owns it (requirements §1): inbound mail is for the
/// domain's recipients and follows its inbound route; outbound mail is from its senders and goes to the recipients' MX.
/// Stored and logged as the lower-case words <c>inbound</c> / <c>outbound</c> (<see cref="DirectionText"/>). No member
/// is 0, so JSON that leaves out default values still writes the direction.
/// </summary>
public enum Direction
{
    [JsonStringEnumMemberName(DirectionText.Inbound)]
    Inbound = 1,

    [JsonStringEnumMemberName(DirectionText.Outbound)]
    Outbound = 2,
}

/// <summary>The wire form of <see cref="Direction"/> in the message log, the queue's JSON and the API.</summary>
public static class DirectionText
{
    public const string Inbound = "inbound";
    public const string Outbound = "outbound";

    public static string Of(Direction direction) => direction == Direction.Outbound ? Outbound : Inbound;

    public static string? Of(Direction? direction) => direction is { } d ? Of(d) : null;

    public static bool TryParse(string? text, [NotNullWhen(true)] out Direction? direction)
    {
        direction = text switch
        {
            Inbound => Direction.Inbound,
            Outbound => Direction.Outbound,
            _ => null,
        };
        return direction is not null;
    }
}
