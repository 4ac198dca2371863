// A test host for the job panel: what a chat client does with an MCP Apps tool, built on the extension's
// own AppBridge. It connects to the server over Streamable HTTP (from its own origin, so through CORS),
// finds the tool's _meta.ui.resourceUri, reads the ui:// resource, renders it in a sandboxed iframe under
// the extension's default content security policy, and hands the panel the tool's input and result.
// Bundled for the browser by tests/test_panel_browser.py with rolldown (.ci/install-ext-apps.sh).
import { AppBridge, PostMessageTransport } from "@modelcontextprotocol/ext-apps/app-bridge";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";

const EXTENSION = "io.modelcontextprotocol/ui";
const MIME_TYPE = "text/html;profile=mcp-app";
const HOST = { name: "panel-test-host", version: "1.0.0" };
// The specification's default policy for a resource that declares no domains: nothing from the network.
const DEFAULT_CSP =
  "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline';" +
  " img-src 'self' data:; media-src 'self' data:; connect-src 'none'; frame-src 'none'; base-uri 'self'";

async function openPanel({ serverUrl, token, tool, args, theme, styles }) {
  const client = new Client(HOST, { capabilities: { extensions: { [EXTENSION]: { mimeTypes: [MIME_TYPE] } } } });
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  await client.connect(new StreamableHTTPClientTransport(new URL(serverUrl), { requestInit: { headers } }));
  const { tools } = await client.listTools();
  const uri = tools.find((t) => t.name === tool)?._meta?.ui?.resourceUri;
  if (!uri) throw new Error(`${tool} has no _meta.ui.resourceUri`);
  const [content] = (await client.readResource({ uri })).contents;
  if (content.mimeType !== MIME_TYPE) throw new Error(`${uri} is served as ${content.mimeType}`);
  const html = content.text.replace("<head>", `<head>\n<meta http-equiv="Content-Security-Policy" content="${DEFAULT_CSP}">`);

  const iframe = document.createElement("iframe");
  iframe.setAttribute("sandbox", "allow-scripts");
  iframe.title = "Job panel";
  document.getElementById("frames").append(iframe);
  const hostContext = {
    theme,
    displayMode: "inline",
    containerDimensions: { maxHeight: 1200, width: iframe.clientWidth },
    locale: "en-GB",
    timeZone: "UTC",
    platform: "web",
    ...(styles ? { styles } : {}),
  };
  const bridge = new AppBridge(client, HOST, { serverTools: {}, logging: {} }, { hostContext });
  bridge.onsizechange = ({ height }) => {
    if (height) iframe.style.height = `${height}px`;
  };
  const initialized = new Promise((resolve) => (bridge.oninitialized = resolve));
  await bridge.connect(new PostMessageTransport(iframe.contentWindow, iframe.contentWindow));
  iframe.srcdoc = html;
  await initialized;
  const result = await client.callTool({ name: tool, arguments: args });
  await bridge.sendToolInput({ arguments: args });
  await bridge.sendToolResult(result);
  document.body.dataset.theme = theme;
  window.panelHost = { client, bridge, iframe, hostContext };
}

function setTheme(theme) {
  document.body.dataset.theme = theme;
  const host = window.panelHost;
  host.hostContext = { ...host.hostContext, theme };
  host.bridge.setHostContext(host.hostContext);
}

window.openPanel = openPanel;
window.setTheme = setTheme;
