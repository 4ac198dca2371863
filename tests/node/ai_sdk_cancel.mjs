// The AI SDK's MCP client (@ai-sdk/mcp), default settings, over stdio: one new connection per job,
// each canceling its job. argv[2] is JSON {command, args, env, project, jobIds}; prints one JSON line per job.
import { createMCPClient } from "@ai-sdk/mcp";
import { Experimental_StdioMCPTransport } from "@ai-sdk/mcp/mcp-stdio";

const { command, args, env, project, jobIds } = JSON.parse(process.argv[2]);
for (const jobId of jobIds) {
  const client = await createMCPClient({
    transport: new Experimental_StdioMCPTransport({ command, args, env }),
  });
  try {
    const result = await client.callTool({
      name: "cancel_job",
      arguments: { project_reference: project, job_id: jobId },
    });
    console.log(JSON.stringify({ jobId, isError: result.isError ?? false, record: result.structuredContent }));
  } finally {
    await client.close();
  }
}
