using System.Reflection;
using System.Reflection.Emit;
using Gateway.Core.Snapshot;

namespace Gateway.Core.Tests;

/// <summary>
/// The dependency rules of docs/architecture.md ("Where each rule lives"), checked on the compiled assemblies: every
/// type reference in signatures and method bodies (IL) counts, so a rule cannot be broken by a using that slipped in.
/// </summary>
[Trait("Kind", "Unit")]
public sealed class ArchitectureTests
{
    private static readonly Assembly Core = typeof(ConfigSnapshot).Assembly;

    /// <summary>Core's folders (namespaces) and the ones each may use; anything else is a broken rule.</summary>
    private static readonly Dictionary<string, string[]> Allowed = new()
    {
        ["Gateway.Core"] = ["Errors", "Dns"],
        ["Gateway.Core.Errors"] = [],
        ["Gateway.Core.Mail"] = [],
        ["Gateway.Core.Domains"] = ["Gateway.Core", "Errors"],
        ["Gateway.Core.Spf"] = ["Domains"],
        ["Gateway.Core.Dns"] = [],
        ["Gateway.Core.Storage"] = ["Gateway.Core", "Domains", "Errors"],
        ["Gateway.Core.Rules"] = ["Gateway.Core", "Domains", "Mail", "Storage", "Errors"],
        ["Gateway.Core.Snapshot"] = ["Gateway.Core", "Domains", "Mail", "Rules", "Storage"],
        ["Gateway.Core.Routing"] = ["Gateway.Core", "Domains", "Mail", "Snapshot"],
        ["Gateway.Core.MessageLog"] = ["Gateway.Core", "Mail", "Storage", "Errors"],
        ["Gateway.Core.Relay"] = ["Gateway.Core", "Domains", "Mail", "Rules", "Snapshot", "Routing", "Spf", "Dns", "MessageLog", "Storage"],
        ["Gateway.Core.Delivery"] = ["Gateway.Core", "Domains", "Mail", "Routing", "Snapshot", "Storage", "MessageLog", "Relay", "Errors", "Tls"],
        ["Gateway.Core.Quarantine"] = ["Gateway.Core", "Mail", "Delivery", "MessageLog", "Rules", "Storage", "Errors"],
        ["Gateway.Core.Secrets"] = [],
        ["Gateway.Core.Dkim"] = ["Gateway.Core", "Domains", "Secrets", "Storage"],
        ["Gateway.Core.Tls"] = ["Domains", "Routing"],
        ["Gateway.Core.MtaSts"] = ["Gateway.Core", "Domains", "Tls", "Storage"],
        ["Gateway.Core.Telemetry"] = ["Gateway.Core", "Snapshot", "Storage"],
        ["Gateway.Core.Verification"] = ["Gateway.Core", "Domains", "Mail", "Relay", "Routing", "Snapshot", "Storage", "MessageLog", "Dns", "Delivery", "Tls"],
        ["Gateway.Core.Hosting"] = ["*"],
    };

    [Fact]
    public void Core_NamespacesFormNoCycle()
    {
        var graph = NamespaceGraph(Core, "Gateway.Core");
        var cycles = StronglyConnected(graph).Where(c => c.Count > 1).Select(c => string.Join(" <-> ", c.Order(StringComparer.Ordinal))).ToList();
        Assert.True(cycles.Count == 0, "Namespace cycles in Gateway.Core: " + string.Join("; ", cycles));
    }

    [Fact]
    public void Core_EachNamespaceUsesOnlyWhatTheArchitectureAllows()
    {
        var broken = new List<string>();
        foreach (var (from, targets) in NamespaceGraph(Core, "Gateway.Core"))
        {
            if (!Allowed.TryGetValue(from, out var allowed))
            {
                broken.Add($"{from} is not in the architecture's table (docs/architecture.md)");
                continue;
            }

            if (allowed.Contains("*"))
            {
                continue;
            }

            var full = allowed.Select(a => a == "Gateway.Core" ? a : "Gateway.Core." + a).ToHashSet(StringComparer.Ordinal);
            broken.AddRange(targets.Where(t => !full.Contains(t)).Select(t => $"{from} -> {t}"));
        }

        Assert.True(broken.Count == 0, "Dependencies the architecture does not allow: " + string.Join("; ", broken));
    }

    [Fact]
    public void Core_HostingIsUsedByNoOtherCoreNamespace() =>
        Assert.DoesNotContain(NamespaceGraph(Core, "Gateway.Core"), kv => kv.Key != "Gateway.Core.Hosting" && kv.Value.Contains("Gateway.Core.Hosting"));

    [Fact]
    public void Projects_CoreReferencesNoProgram_NoMailKit_ProgramsNotEachOther()
    {
        static string[] References(Assembly a) => a.GetReferencedAssemblies().Select(n => n.Name!).ToArray();
        Assert.DoesNotContain(References(Core), n => n.StartsWith("Gateway.", StringComparison.Ordinal) || n == "MailKit");
        var policy = typeof(Gateway.PolicyDaemon.Postfix.PostfixPolicy).Assembly;
        var deliverer = typeof(Gateway.Deliverer.Intake.SmtpSession).Assembly;
        var controlPlane = typeof(Gateway.ControlPlane.Application.DomainManager).Assembly;
        Assert.DoesNotContain(deliverer.GetName().Name, References(policy));
        Assert.DoesNotContain(policy.GetName().Name, References(deliverer));
        Assert.DoesNotContain(References(controlPlane), n => n == policy.GetName().Name || n == deliverer.GetName().Name);
        Assert.DoesNotContain("MailKit", References(policy));
    }

    /// <summary>Namespace → namespaces it references (same assembly, under <paramref name="prefix"/>).</summary>
    private static Dictionary<string, HashSet<string>> NamespaceGraph(Assembly assembly, string prefix)
    {
        var graph = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var type in assembly.GetTypes())
        {
            var from = NamespaceOf(type);
            if (from is null || !from.StartsWith(prefix, StringComparison.Ordinal))
            {
                continue;
            }

            if (!graph.TryGetValue(from, out var targets))
            {
                graph[from] = targets = new HashSet<string>(StringComparer.Ordinal);
            }

            foreach (var used in Referenced(type))
            {
                if (used.Assembly == assembly && NamespaceOf(used) is { } to && to != from && to.StartsWith(prefix, StringComparison.Ordinal))
                {
                    targets.Add(to);
                }
            }
        }

        return graph;
    }

    /// <summary>The namespace of a type's outermost declaring type (closures and state machines count for their owner).</summary>
    private static string? NamespaceOf(Type type)
    {
        while (type.DeclaringType is { } outer)
        {
            type = outer;
        }

        return type.Namespace;
    }

    private const BindingFlags All = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

    private static IEnumerable<Type> Referenced(Type type)
    {
        var found = new HashSet<Type>();
        void Add(Type? t)
        {
            if (t is null || !found.Add(t))
            {
                return;
            }

            if (t.HasElementType)
            {
                Add(t.GetElementType());
            }

            if (t.IsGenericType)
            {
                foreach (var a in t.GetGenericArguments())
                {
                    Add(a);
                }
            }
        }

        Add(type.BaseType);
        foreach (var i in type.GetInterfaces())
        {
            Add(i);
        }

        foreach (var a in type.GetCustomAttributesData())
        {
            Add(a.AttributeType);
        }

        foreach (var f in type.GetFields(All))
        {
            Add(f.FieldType);
        }

        foreach (var p in type.GetProperties(All))
        {
            Add(p.PropertyType);
        }

        foreach (var m in type.GetMethods(All).Cast<MethodBase>().Concat(type.GetConstructors(All)))
        {
            if (m is MethodInfo mi)
            {
                Add(mi.ReturnType);
            }

            foreach (var p in m.GetParameters())
            {
                Add(p.ParameterType);
            }

            foreach (var t in BodyReferences(m))
            {
                Add(t);
            }
        }

        return found;
    }

    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes).GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!).ToDictionary(o => o.Value);

    /// <summary>Types named by the tokens of a method body's IL (calls, field access, casts, new objects, ldtoken …).</summary>
    private static IEnumerable<Type> BodyReferences(MethodBase method)
    {
        var il = method.GetMethodBody()?.GetILAsByteArray();
        if (il is null)
        {
            yield break;
        }

        var module = method.Module;
        var typeArgs = method.DeclaringType?.IsGenericType == true ? method.DeclaringType.GetGenericArguments() : null;
        var methodArgs = method.IsGenericMethod ? method.GetGenericArguments() : null;
        for (var i = 0; i < il.Length;)
        {
            var value = (short)il[i++];
            if (value == 0xFE)
            {
                value = (short)(0xFE00 | il[i++]);
            }

            if (!OpCodesByValue.TryGetValue(value, out var op))
            {
                yield break;
            }

            switch (op.OperandType)
            {
                case OperandType.InlineNone:
                    break;
                case OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar:
                    i += 1;
                    break;
                case OperandType.InlineVar:
                    i += 2;
                    break;
                case OperandType.InlineI8 or OperandType.InlineR:
                    i += 8;
                    break;
                case OperandType.InlineSwitch:
                    var n = BitConverter.ToInt32(il, i);
                    i += 4 + (4 * n);
                    break;
                case OperandType.InlineMethod or OperandType.InlineField or OperandType.InlineType or OperandType.InlineTok:
                    var token = BitConverter.ToInt32(il, i);
                    i += 4;
                    MemberInfo? member = null;
                    try
                    {
                        member = module.ResolveMember(token, typeArgs, methodArgs);
                    }
                    catch (ArgumentException)
                    {
                    }

                    switch (member)
                    {
                        case Type t:
                            yield return t;
                            break;
                        case MethodBase mb:
                            if (mb.DeclaringType is { } d)
                            {
                                yield return d;
                            }

                            if (mb is MethodInfo { IsGenericMethod: true } gm)
                            {
                                foreach (var g in gm.GetGenericArguments())
                                {
                                    yield return g;
                                }
                            }

                            break;
                        case FieldInfo fi:
                            if (fi.DeclaringType is { } fd)
                            {
                                yield return fd;
                            }

                            break;
                    }

                    break;
                default:
                    i += 4;
                    break;
            }
        }
    }

    /// <summary>Tarjan's strongly connected components.</summary>
    private static List<List<string>> StronglyConnected(Dictionary<string, HashSet<string>> graph)
    {
        var index = 0;
        var stack = new Stack<string>();
        var indices = new Dictionary<string, int>();
        var low = new Dictionary<string, int>();
        var onStack = new HashSet<string>();
        var result = new List<List<string>>();

        void Visit(string v)
        {
            indices[v] = low[v] = index++;
            stack.Push(v);
            onStack.Add(v);
            foreach (var w in graph.TryGetValue(v, out var ws) ? ws : [])
            {
                if (!indices.TryGetValue(w, out var wIndex))
                {
                    Visit(w);
                    low[v] = Math.Min(low[v], low[w]);
                }
                else if (onStack.Contains(w))
                {
                    low[v] = Math.Min(low[v], wIndex);
                }
            }

            if (low[v] == indices[v])
            {
                var component = new List<string>();
                string w;
                do
                {
                    w = stack.Pop();
                    onStack.Remove(w);
                    component.Add(w);
                }
                while (w != v);
                result.Add(component);
            }
        }

        foreach (var v in graph.Keys.ToList())
        {
            if (!indices.ContainsKey(v))
            {
                Visit(v);
            }
        }

        return result;
    }
}
