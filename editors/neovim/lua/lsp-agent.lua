-- lsp-agent for Neovim >= 0.10: the built-in LSP client, plus what lsp-agent's own protocol
-- (docs/protocol.md) needs on the editor's side: the `agent/event` stream shown in a scratch
-- buffer, `agent/requestPermission` answered through vim.ui.select, commands to start a
-- session, send a prompt and review the edits the agent proposes.
--
-- Use it as it is (docs/editors/neovim.md):
--   vim.opt.runtimepath:append('/path/to/lsp-agent/editors/neovim')  -- or copy this file to
--   require('lsp-agent').setup({})                                    -- ~/.config/nvim/lua/

local M = {}

local api = vim.api

M.defaults = {
  name = 'lsp_agent', -- the name of the LSP configuration (vim.lsp.config / :checkhealth)
  -- Neovim logs every line a server writes to stderr as an ERROR in its lsp.log: keep the
  -- server to warnings (`lsp-agent --log-level info serve` to see everything).
  cmd = { 'lsp-agent', '--log-level', 'warning', 'serve' },
  cmd_env = nil, -- e.g. { ANTHROPIC_API_KEY = ... }; by default the server inherits Neovim's
  filetypes = nil, -- nil: every file; or a list such as { 'python', 'lua' }
  root_markers = { '.git', 'pyproject.toml', 'setup.py', 'package.json', 'Cargo.toml', 'go.mod' },
  init_options = {}, -- lsp-agent's initializationOptions (docs/protocol.md), e.g. { mode = 'default' }
  save_applied_edits = true, -- :write the buffers an accepted edit changed (see the doc)
  output = 'split', -- how a session's output buffer opens: 'split', 'vsplit', 'tab' or 'none'
}

-- What the module knows; read it for a statusline (and the tests read it).
M.state = {
  session = nil, -- the current session id (the last one started or used)
  outputs = {}, -- session id -> output buffer
  pending = {}, -- proposal id -> proposal_created event, until it is resolved
  order = {}, -- proposal ids, oldest first
  busy = {}, -- session id -> true while a turn runs (from turn_started to turn_ended)
  events = {}, -- the last `max_events` events, oldest first
  max_events = 500,
}

local opts = vim.deepcopy(M.defaults)

-- Neovim 0.11 calls client methods with ':', 0.10 with '.'.
local HAS_011 = vim.fn.has('nvim-0.11') == 1

local function request(client, method, params, handler, bufnr)
  if HAS_011 then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

local function notify(message, level)
  vim.notify('lsp-agent: ' .. message, level or vim.log.levels.INFO)
end

--- The running lsp-agent client: the one attached to the current buffer, else any.
function M.client()
  local attached = vim.lsp.get_clients({ name = opts.name, bufnr = 0 })
  return attached[1] or vim.lsp.get_clients({ name = opts.name })[1]
end

-- Empty Lua tables encode as JSON arrays; objects the server expects must be dicts.
local function object(tbl)
  return next(tbl) == nil and vim.empty_dict() or tbl
end

-- -- asking the user from inside a server request ------------------------------------------

-- Neovim runs a server request's handler in a coroutine and sends what it returns as the
-- answer; vim.ui.select is asynchronous with most UI plugins. So: ask, yield until the
-- callback comes, return the choice. A callback that comes at once (the built-in inputlist)
-- never yields.
local function await(ask)
  local co, is_main = coroutine.running()
  local done, value = false, nil
  ask(function(choice)
    done, value = true, choice
    if co and not is_main and coroutine.status(co) == 'suspended' then
      local ok, err = coroutine.resume(co)
      if not ok then
        notify('answering the server failed: ' .. tostring(err), vim.log.levels.ERROR)
      end
    end
  end)
  if not done then
    if not co or is_main then
      return nil -- cannot wait here (never the case for server requests)
    end
    coroutine.yield()
  end
  return value
end

local function choose(items, prompt, format)
  return await(function(cb)
    vim.ui.select(items, { prompt = prompt, format_item = format }, cb)
  end)
end

local function input(prompt)
  return await(function(cb)
    vim.ui.input({ prompt = prompt }, cb)
  end)
end

-- -- the output buffer of a session ----------------------------------------------------------

local function output_buffer(session_id)
  local buf = M.state.outputs[session_id]
  if buf and api.nvim_buf_is_valid(buf) then
    return buf
  end
  buf = api.nvim_create_buf(true, true) -- listed scratch buffer (buftype=nofile)
  pcall(api.nvim_buf_set_name, buf, 'lsp-agent://session/' .. session_id)
  vim.bo[buf].filetype = 'markdown'
  vim.bo[buf].modifiable = false
  M.state.outputs[session_id] = buf
  return buf
end

--- Show a session's output buffer (the current session's by default) unless it is visible.
function M.show_output(session_id)
  session_id = session_id or M.state.session
  if not session_id or opts.output == 'none' then
    return
  end
  local buf = output_buffer(session_id)
  if vim.fn.bufwinid(buf) ~= -1 then
    return
  end
  local current = api.nvim_get_current_win()
  local open = { split = 'botright split', vsplit = 'botright vsplit', tab = 'tabnew' }
  vim.cmd(open[opts.output] or open.split)
  api.nvim_win_set_buf(0, buf)
  if opts.output ~= 'tab' then
    api.nvim_set_current_win(current) -- keep typing where the user was
  end
end

local function append(session_id, text)
  if text == nil or text == '' then
    return
  end
  local buf = output_buffer(session_id)
  local last = api.nvim_buf_line_count(buf) - 1
  local col = #api.nvim_buf_get_lines(buf, last, last + 1, true)[1]
  vim.bo[buf].modifiable = true
  api.nvim_buf_set_text(buf, last, col, last, col, vim.split(text, '\n', { plain = true }))
  vim.bo[buf].modifiable = false
  vim.bo[buf].modified = false -- nothing to save: no [+] in the statusline
  local line = api.nvim_buf_line_count(buf)
  for _, win in ipairs(vim.fn.win_findbuf(buf)) do
    api.nvim_win_set_cursor(win, { line, 0 }) -- follow the stream
  end
end

local function first_line(text)
  return (tostring(text or ''):match('^[^\n]*'))
end

local function tool_summary(input_)
  if type(input_) ~= 'table' then
    return ''
  end
  return first_line(input_.command or input_.path or input_.pattern or input_.query or '')
end

-- -- agent/event ---------------------------------------------------------------------------

local function proposal_line(e)
  local files = {}
  for _, f in ipairs(e.files or {}) do
    files[#files + 1] = f.path
  end
  return string.format('\n[proposal %s: %s%s]\n', e.proposalId, table.concat(files, ', '),
    e.autoApply and ' (applied at once)' or ' (review it with :LspAgentReview)')
end

-- What each event type adds to the output buffer; types not listed add nothing.
local render = {
  turn_started = function(e)
    return '\n\n## ' .. first_line(e.prompt) .. '\n\n'
  end,
  text_delta = function(e)
    return e.text
  end,
  tool_input_complete = function(e)
    return string.format('\n> %s %s\n', e.name, tool_summary(e.input))
  end,
  tool_result = function(e)
    return string.format('> %s %s: %s\n', e.isError and 'failed' or 'done', e.name,
      first_line(e.content))
  end,
  permission_decided = function(e)
    return string.format('> %s: %s (%s)\n', e.tool, e.decision, e.source)
  end,
  proposal_created = proposal_line,
  proposal_resolved = function(e)
    return string.format('[proposal %s: %s]\n', e.proposalId, e.status)
  end,
  error = function(e)
    return string.format('\n! %s: %s\n', e.kind, e.message)
  end,
  turn_ended = function(e)
    return string.format('\n-- %s --\n', e.stopReason)
  end,
}

-- Bookkeeping per event type, before rendering.
local track = {
  proposal_created = function(e)
    if not e.autoApply then
      M.state.pending[e.proposalId] = e
      table.insert(M.state.order, e.proposalId)
      notify(string.format('proposal %s waits for review (:LspAgentReview)', e.proposalId))
    end
  end,
  proposal_resolved = function(e)
    M.state.pending[e.proposalId] = nil
  end,
  turn_started = function(e)
    M.state.session = e.sessionId
    M.state.busy[e.sessionId] = true
  end,
  turn_ended = function(e)
    M.state.busy[e.sessionId] = nil
  end,
}

local function on_event(_, params, _)
  local e = params and params.event
  if type(e) ~= 'table' then
    return
  end
  local events = M.state.events
  events[#events + 1] = e
  if #events > M.state.max_events then
    table.remove(events, 1)
  end
  if track[e.type] then
    track[e.type](e)
  end
  if render[e.type] then
    append(e.sessionId, render[e.type](e))
  end
end

-- -- agent/requestPermission ----------------------------------------------------------------

M.permission_choices = {
  { label = 'Allow once', answer = { decision = 'allow' } },
  { label = 'Allow for this session', answer = { decision = 'allow', remember = 'session' } },
  { label = 'Deny', answer = { decision = 'deny', message = 'The user denied this.' } },
}

local function on_permission(_, params, _)
  local what = tool_summary(params.input)
  local prompt = string.format('lsp-agent wants to run %s%s: %s', params.tool,
    what ~= '' and (' `' .. what .. '`') or '', first_line(params.reason))
  local choice = choose(M.permission_choices, prompt, function(c)
    return c.label
  end)
  -- Dismissed: a denial the agent is told about (the server also treats silence so).
  return choice and choice.answer or { decision = 'deny', message = 'The user dismissed the question.' }
end

-- -- workspace/applyEdit --------------------------------------------------------------------

local function uris_of(edit)
  local uris = {}
  for uri in pairs(edit.changes or {}) do
    uris[#uris + 1] = uri
  end
  for _, change in ipairs(edit.documentChanges or {}) do
    uris[#uris + 1] = change.textDocument and change.textDocument.uri or change.uri
  end
  return uris
end

-- The server writes an accepted edit's result to disk itself; Neovim would then see a file
-- changed under a modified buffer (W12 on the next :checktime, a question on :write). Saving
-- the buffer here writes the very same text first (the server then finds the disk already
-- right), with 'fixendofline' off so that the file ends exactly as the buffer does.
local function save(uri)
  local buf = vim.uri_to_bufnr(uri)
  if not api.nvim_buf_is_loaded(buf) or not vim.bo[buf].modified or vim.bo[buf].buftype ~= '' then
    return
  end
  api.nvim_buf_call(buf, function()
    local fixeol = vim.bo.fixendofline
    vim.bo.fixendofline = false
    local ok, err = pcall(vim.cmd, 'silent noautocmd keepalt write!')
    vim.bo.fixendofline = fixeol
    if not ok then
      notify('could not save ' .. uri .. ': ' .. tostring(err), vim.log.levels.WARN)
    end
  end)
end

local function on_apply_edit(err, params, ctx)
  local answer = vim.lsp.handlers['workspace/applyEdit'](err, params, ctx)
  if opts.save_applied_edits and answer and answer.applied then
    for _, uri in ipairs(uris_of(params.edit)) do
      save(uri)
    end
  end
  return answer
end

-- -- code action commands -------------------------------------------------------------------

-- The code actions' commands run through here instead of straight to the server, to ask for
-- an instruction ("Ask agent to change this") and to show the session's output.
local function forward(ask_instruction)
  return function(command, ctx)
    local client = vim.lsp.get_client_by_id(ctx.client_id)
    if not client then
      return
    end
    local args = vim.deepcopy(command.arguments or {})
    local run = function(instruction)
      if instruction and instruction ~= '' and type(args[1]) == 'table' then
        args[1].instruction = instruction
      end
      request(client, 'workspace/executeCommand', { command = command.command, arguments = args },
        function(e, result)
          if e then
            notify(e.message, vim.log.levels.ERROR)
          elseif result and result.sessionId then
            M.state.session = result.sessionId
            M.show_output(result.sessionId)
          end
        end, ctx.bufnr)
    end
    if ask_instruction then
      vim.ui.input({ prompt = 'What should the agent change? ' }, run)
    else
      run(nil)
    end
  end
end

local commands = {
  ['lspAgent.fix'] = forward(false),
  ['lspAgent.explain'] = forward(false),
  ['lspAgent.change'] = forward(true),
}

-- -- user commands --------------------------------------------------------------------------

local function need_client()
  local client = M.client()
  if not client then
    notify('not running (open a file in a project first)', vim.log.levels.WARN)
  end
  return client
end

local function workspace_uri(client)
  local folder = client.workspace_folders and client.workspace_folders[1]
  return folder and folder.uri or (client.config.root_dir and vim.uri_from_fname(client.config.root_dir))
end

--- Start a session; `then_` gets its id.
function M.new_session(mode, then_)
  local client = need_client()
  if not client then
    return
  end
  local params = { workspaceUri = workspace_uri(client), mode = (mode ~= '' and mode) or nil }
  request(client, 'agent/newSession', object(params), function(err, result)
    if err then
      return notify(err.message, vim.log.levels.ERROR)
    end
    M.state.session = result.sessionId
    for _, warning in ipairs(result.warnings or {}) do
      notify(warning, vim.log.levels.WARN)
    end
    output_buffer(result.sessionId)
    if then_ then
      then_(result.sessionId)
    else
      M.show_output(result.sessionId)
    end
  end)
end

-- What the user is looking at: the buffer, and the selection when a range was given.
local function context(client, range)
  local buf = api.nvim_get_current_buf()
  if vim.bo[buf].buftype ~= '' or api.nvim_buf_get_name(buf) == '' then
    return nil
  end
  local ctx = { uri = vim.uri_from_bufnr(buf) }
  if range then
    local last = api.nvim_buf_get_lines(buf, range[2] - 1, range[2], true)[1]
    local params = vim.lsp.util.make_given_range_params({ range[1], 0 }, { range[2], #last }, buf,
      client.offset_encoding)
    ctx.range = params.range
    ctx.selectionText = table.concat(api.nvim_buf_get_lines(buf, range[1] - 1, range[2], true), '\n')
  end
  return ctx
end

--- Send a prompt to the current session (starting one if needed).
function M.prompt(text, range)
  local client = need_client()
  if not client or not text or text == '' then
    return
  end
  local ctx = context(client, range)
  local send = function(session_id)
    M.show_output(session_id)
    request(client, 'agent/prompt', { sessionId = session_id, text = text, context = ctx },
      function(err, result)
        if err then
          return notify(err.message, vim.log.levels.ERROR)
        end
        notify('turn ended: ' .. result.stopReason)
      end)
  end
  if M.state.session then
    send(M.state.session)
  else
    M.new_session('', send)
  end
end

local function review_buffer(proposal)
  local lines = {}
  for _, file in ipairs(proposal.files or {}) do
    vim.list_extend(lines, vim.split(file.diff or '', '\n', { plain = true }))
  end
  local buf = api.nvim_create_buf(false, true)
  api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.bo[buf].filetype = 'diff'
  vim.bo[buf].modifiable = false
  vim.bo[buf].bufhidden = 'wipe'
  return buf
end

local function hunks_of(proposal)
  local hunks = {}
  for _, file in ipairs(proposal.files or {}) do
    for _, hunk in ipairs(file.hunks or {}) do
      hunks[#hunks + 1] = { id = hunk.id, path = file.path, header = hunk.header }
    end
  end
  return hunks
end

-- The verdicts :LspAgentReview offers: each returns the agent/review params, or nil.
M.review_choices = {
  { label = 'Accept all', decide = function() return { accept = 'all' } end },
  { label = 'Reject all', decide = function() return { reject = 'all' } end },
  {
    label = 'Reject, with feedback for the agent',
    decide = function(wait_input)
      local feedback = wait_input('Feedback: ')
      return { reject = 'all', feedback = feedback }
    end,
  },
  {
    label = 'Choose hunk by hunk',
    decide = function(_, wait_select, proposal)
      local accept = {}
      for _, hunk in ipairs(hunks_of(proposal)) do
        local yes = wait_select({ 'accept', 'reject' }, string.format('%s %s', hunk.path, hunk.header))
        if yes == nil then
          return nil
        end
        if yes == 'accept' then
          accept[#accept + 1] = hunk.id
        end
      end
      return { accept = accept }
    end,
  },
}

local function send_review(client, proposal, verdict)
  local params = vim.tbl_extend('force', { proposalId = proposal.proposalId }, verdict)
  -- No buffer given: Neovim first sends the pending didChange of every buffer, so the server
  -- rebases the edit onto what the user typed meanwhile.
  request(client, 'agent/review', params, function(err, result)
    if err then
      return notify(err.message, vim.log.levels.ERROR)
    end
    local level = (result.status == 'conflict' or result.status == 'failed') and vim.log.levels.WARN
    notify(string.format('%s: %s', proposal.proposalId, result.status), level)
    for _, detail in ipairs(result.conflictDetails or {}) do
      notify(detail, vim.log.levels.WARN)
    end
  end)
end

--- Review the oldest pending proposal: show its diff, ask for a verdict, send it.
function M.review()
  local client = need_client()
  local id = nil
  while #M.state.order > 0 and not id do
    local first = table.remove(M.state.order, 1)
    if M.state.pending[first] then
      id = first
    end
  end
  if not client or not id then
    return notify('no proposal waits for review')
  end
  local proposal = M.state.pending[id]
  local buf = review_buffer(proposal)
  vim.cmd('botright split')
  local win = api.nvim_get_current_win()
  api.nvim_win_set_buf(win, buf)
  coroutine.wrap(function()
    local choice = choose(M.review_choices, 'Review ' .. id, function(c)
      return c.label
    end)
    local verdict = choice and choice.decide(input, function(items, prompt)
      return choose(items, prompt)
    end, proposal)
    if api.nvim_win_is_valid(win) then
      api.nvim_win_close(win, true)
    end
    if verdict then
      send_review(client, proposal, verdict)
    else
      table.insert(M.state.order, 1, id) -- dismissed: still pending
    end
  end)()
end

-- A byte column of Neovim's as a column in the negotiated encoding (lsp-agent gets utf-8 from
-- Neovim's defaults, where the two are the same).
local function wire_col(buf, row, byte_col, encoding)
  if encoding == 'utf-8' then
    return byte_col
  end
  local line = api.nvim_buf_get_lines(buf, row, row + 1, false)[1] or ''
  byte_col = math.min(byte_col, #line)
  if HAS_011 then
    return vim.str_utfindex(line, encoding, byte_col, false)
  end
  local col32, col16 = vim.str_utfindex(line, byte_col)
  return encoding == 'utf-16' and col16 or col32
end

local function lsp_diagnostic(buf, d, encoding)
  local end_row, end_col = d.end_lnum or d.lnum, d.end_col or d.col
  return {
    range = {
      start = { line = d.lnum, character = wire_col(buf, d.lnum, d.col, encoding) },
      ['end'] = { line = end_row, character = wire_col(buf, end_row, end_col, encoding) },
    },
    message = d.message,
    severity = d.severity,
    source = d.source,
    code = d.code,
  }
end

--- "Fix with agent" for a diagnostic on the cursor's line, from any source (Neovim gives a code
--- action request only the lsp-agent client's own diagnostics, and the server publishes none).
--- Runs in the current session when it is idle, else in a new one.
function M.fix()
  local client = need_client()
  if not client then
    return
  end
  local buf = api.nvim_get_current_buf()
  local row = api.nvim_win_get_cursor(0)[1] - 1
  local diagnostics = vim.diagnostic.get(buf, { lnum = row })
  if #diagnostics == 0 then
    return notify('no diagnostic on this line')
  end
  coroutine.wrap(function()
    local d = #diagnostics == 1 and diagnostics[1]
      or choose(diagnostics, 'Fix which problem?', function(item)
        return first_line(item.message)
      end)
    if not d then
      return
    end
    local session = M.state.session
    local args = { uri = vim.uri_from_bufnr(buf), diagnostic = lsp_diagnostic(buf, d, client.offset_encoding) }
    if session and not M.state.busy[session] then
      args.sessionId = session
    end
    commands['lspAgent.fix']({ command = 'lspAgent.fix', arguments = { args } },
      { client_id = client.id, bufnr = buf })
  end)()
end

function M.cancel()
  local client = need_client()
  if client and M.state.session then
    request(client, 'agent/cancel', { sessionId = M.state.session }, function() end)
  end
end

function M.set_mode(mode)
  local client = need_client()
  if client and M.state.session then
    request(client, 'agent/setMode', { sessionId = M.state.session, mode = mode }, function(err)
      notify(err and err.message or ('mode: ' .. mode), err and vim.log.levels.ERROR or nil)
    end)
  end
end

local function create_commands()
  local cmd = api.nvim_create_user_command
  cmd('LspAgentNew', function(a)
    M.new_session(a.args)
  end, { nargs = '?', desc = 'lsp-agent: start a session [mode]' })
  cmd('LspAgentPrompt', function(a)
    M.prompt(a.args, a.range > 0 and { a.line1, a.line2 } or nil)
  end, { nargs = '+', range = true, desc = 'lsp-agent: send a prompt (with the selected lines)' })
  cmd('LspAgentReview', M.review, { desc = 'lsp-agent: review the oldest pending proposal' })
  cmd('LspAgentFix', M.fix, { desc = "lsp-agent: fix a diagnostic on the cursor's line" })
  cmd('LspAgentCancel', M.cancel, { desc = 'lsp-agent: stop the running turn' })
  cmd('LspAgentMode', function(a)
    M.set_mode(a.args)
  end, {
    nargs = 1,
    desc = 'lsp-agent: permission mode of the session',
    complete = function()
      return { 'default', 'acceptEdits', 'plan', 'dontAsk', 'bypassPermissions' }
    end,
  })
  cmd('LspAgentOutput', function()
    M.show_output()
  end, { desc = 'lsp-agent: show the session output' })
end

-- -- setup ----------------------------------------------------------------------------------

--- The client configuration (the shape vim.lsp.config and vim.lsp.start take).
function M.config()
  return {
    name = opts.name,
    cmd = opts.cmd,
    cmd_env = opts.cmd_env,
    filetypes = opts.filetypes,
    root_markers = opts.root_markers,
    init_options = object(opts.init_options or {}),
    handlers = {
      ['agent/event'] = on_event,
      ['agent/requestPermission'] = on_permission,
      ['workspace/applyEdit'] = on_apply_edit,
    },
    commands = commands,
  }
end

function M.setup(user_opts)
  opts = vim.tbl_deep_extend('force', vim.deepcopy(M.defaults), user_opts or {})
  create_commands()
  local config = M.config()
  if vim.lsp.config and vim.lsp.enable then -- Neovim >= 0.11
    vim.lsp.config(opts.name, config)
    vim.lsp.enable(opts.name)
    return
  end
  -- Neovim 0.10: start (or reuse) the client for every file buffer of a matching type.
  api.nvim_create_autocmd('FileType', {
    group = api.nvim_create_augroup('lsp-agent', { clear = true }),
    pattern = opts.filetypes or '*',
    callback = function(args)
      if vim.bo[args.buf].buftype ~= '' then
        return
      end
      local start = vim.deepcopy(config)
      start.root_dir = vim.fs.root(args.buf, opts.root_markers) or vim.fn.getcwd()
      vim.lsp.start(start, { bufnr = args.buf })
    end,
  })
end

return M
