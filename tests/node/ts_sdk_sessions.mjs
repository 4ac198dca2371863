// The TypeScript SDK 2.x client over Streamable HTTP, one new client per job, each closed the way the
// SDK closes it: without DELETE (terminateSession is never called). argv[2] is JSON {url, project, jobIds}.
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";

const { url, project, jobIds } = JSON.parse(process.argv[2]);
let deleted = false;
const watchingFetch = (input, init) => {
  if ((init?.method ?? "GET") === "DELETE") deleted = true;
  return fetch(input, init);
};
for (const jobId of jobIds) {
  const client = new Client({ name: "ts-sdk-sessions", version: "0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { fetch: watchingFetch }));
  try {
    const result = await client.callTool({ name: "get_job", arguments: { project_reference: project, job_id: jobId } });
    console.log(JSON.stringify({ jobId, isError: result.isError ?? false, record: result.structuredContent, deleted }));
  } finally {
    await client.close();
  }
}
