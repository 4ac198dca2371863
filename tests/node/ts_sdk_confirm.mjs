// The TypeScript SDK 2.x client (@modelcontextprotocol/client) with an elicitation handler: it answers
// each confirmation as told, over stdio or Streamable HTTP, in the era asked for ("legacy": 2025-11-25,
// elicitation/create; "auto": 2026-07-28, input_required round trips, fulfilled by the same handler).
// argv[2] is JSON {mode, stdio?: {command, args, env}, url?, token?, project, calls: [{jobId, answer}]}
// with answer "accept" or "decline"; prints one JSON line per call.
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";

const { mode, stdio, url, token, project, calls } = JSON.parse(process.argv[2]);
const client = new Client(
  { name: "ts-sdk-confirm", version: "1.0.0" },
  { capabilities: { elicitation: { form: {} } }, versionNegotiation: { mode } },
);
let answer = "decline";
const asked = [];
client.setRequestHandler("elicitation/create", async (request) => {
  asked.push(request.params.message);
  return answer === "accept" ? { action: "accept", content: { confirm: true } } : { action: "decline" };
});
const transport = stdio
  ? new StdioClientTransport(stdio)
  : new StreamableHTTPClientTransport(new URL(url), {
      requestInit: token ? { headers: { Authorization: `Bearer ${token}` } } : undefined,
    });
await client.connect(transport);
try {
  for (const call of calls) {
    answer = call.answer;
    const before = asked.length;
    const result = await client.callTool({
      name: "cancel_job",
      arguments: { project_reference: project, job_id: call.jobId },
    });
    console.log(
      JSON.stringify({
        jobId: call.jobId,
        protocolVersion: client.getNegotiatedProtocolVersion?.() ?? null,
        asked: asked.slice(before),
        isError: result.isError ?? false,
        text: result.content?.[0]?.text ?? null,
        status: result.structuredContent?.status ?? null,
      }),
    );
  }
} finally {
  await client.close();
}
