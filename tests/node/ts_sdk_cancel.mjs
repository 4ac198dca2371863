// The TypeScript SDK 2.x client (@modelcontextprotocol/client) in `auto` mode over stdio: one new
// connection per job, each canceling its job. argv[2] is JSON {command, args, env, project, jobIds}.
import { Client } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";

const { command, args, env, project, jobIds } = JSON.parse(process.argv[2]);
for (const jobId of jobIds) {
  const client = new Client({ name: "ts-sdk-test", version: "0" }, { versionNegotiation: { mode: "auto" } });
  await client.connect(new StdioClientTransport({ command, args, env }));
  try {
    const result = await client.callTool({
      name: "cancel_job",
      arguments: { project_reference: project, job_id: jobId },
    });
    const protocolVersion = client.getNegotiatedProtocolVersion?.() ?? null;
    console.log(
      JSON.stringify({ jobId, protocolVersion, isError: result.isError ?? false, record: result.structuredContent }),
    );
  } finally {
    await client.close();
  }
}
