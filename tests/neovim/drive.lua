-- Drives a real headless Neovim through lsp-agent's whole flow, as a user would, with the
-- plugin file users load (editors/neovim/lua/lsp-agent.lua). Run by tests/test_e2e_neovim.py:
--   nvim --headless --clean -c 'luafile tests/neovim/drive.lua'
-- with LSP_AGENT_NVIM_TEST pointing at a JSON file {plugin_dir, server_cmd, project, results}.
-- Writes what it saw to `results` as JSON (the test asserts on it) and quits. Every wait is
-- bounded; a step that times out ends the run with its name in `error`.

local cfg = vim.json.decode(table.concat(vim.fn.readfile(os.getenv('LSP_AGENT_NVIM_TEST')), '\n'))
local WAIT_MS = cfg.wait_ms or 30000
local out = { asked = {}, edits = {}, step = 'start' }

local started = vim.uv.hrtime()
out.timings = {} -- seconds since the start at which each wait began, for a slow run's report

local function wait(what, cond)
  out.step = what
  table.insert(out.timings, { what, (vim.uv.hrtime() - started) / 1e9 })
  if not vim.wait(WAIT_MS, cond, 20) then
    error('timed out: ' .. what, 0)
  end
end

local function read_file(path)
  local f = assert(io.open(path, 'rb'))
  local text = f:read('*a')
  f:close()
  return text
end

-- The buffer's text as the LSP client sees it (a final newline only when 'eol' is set).
local function buffer_text(buf)
  local text = table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, true), '\n')
  return vim.bo[buf].eol and (text .. '\n') or text
end

-- The user's answers, by the start of the question; asked later, as UI plugins do.
local answers = {
  { prompt = '^lsp%-agent wants to run Bash', pick = 'Allow once' },
  { prompt = '^Review ', pick = 'Accept all' },
}
vim.ui.select = function(items, opts, on_choice)
  local prompt = opts.prompt or ''
  table.insert(out.asked, prompt)
  local format = opts.format_item or tostring
  for _, answer in ipairs(answers) do
    if prompt:match(answer.prompt) then
      for _, item in ipairs(items) do
        if format(item) == answer.pick then
          return vim.schedule(function()
            on_choice(item)
          end)
        end
      end
    end
  end
  vim.schedule(function()
    on_choice(nil)
  end)
end
vim.ui.input = function(opts, on_confirm)
  table.insert(out.asked, opts.prompt)
  vim.schedule(function()
    on_confirm('Ajoute un commentaire en français')
  end)
end

-- See every workspace/applyEdit as Neovim's own handler gets it.
local default_apply = vim.lsp.handlers['workspace/applyEdit']
vim.lsp.handlers['workspace/applyEdit'] = function(err, params, ctx)
  table.insert(out.edits, params.edit)
  return default_apply(err, params, ctx)
end

local function events_of(kind)
  local found = {}
  for _, e in ipairs(require('lsp-agent').state.events) do
    if e.type == kind then
      found[#found + 1] = e
    end
  end
  return found
end

local function floating_text()
  for _, win in ipairs(vim.api.nvim_list_wins()) do
    if vim.api.nvim_win_get_config(win).relative ~= '' then
      local buf = vim.api.nvim_win_get_buf(win)
      return table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, true), '\n'), win
    end
  end
end

local function main()
  -- Python's ftplugin asks `has('python3')`, which probes the python3 provider for seconds;
  -- nothing here needs the provider.
  vim.g.loaded_python3_provider = 0
  vim.opt.runtimepath:append(cfg.plugin_dir)
  if cfg.without_lsp_enable then
    vim.lsp.enable = nil -- as on Neovim 0.10: the plugin starts the client with vim.lsp.start
  end
  local agent = require('lsp-agent')
  agent.setup({
    cmd = cfg.server_cmd,
    init_options = { permissionTimeoutSeconds = 60, applyEditVerifySeconds = 10 },
    output = 'vsplit',
  })

  local calc = cfg.project .. '/calc.py'
  vim.cmd.edit(vim.fn.fnameescape(calc))
  local buf = vim.api.nvim_get_current_buf()
  local client
  wait('the client starts', function()
    client = vim.lsp.get_clients({ name = 'lsp_agent', bufnr = buf })[1]
    return client ~= nil and client.initialized == true
  end)
  out.offered = client.capabilities.general.positionEncodings
  out.declared_document_changes = vim.tbl_get(client.capabilities, 'workspace', 'workspaceEdit',
    'documentChanges') or false
  out.offset_encoding = client.offset_encoding
  out.server_encoding = client.server_capabilities.positionEncoding

  -- Definition and hover with the cursor in `subtract` after accents, CJK and an emoji.
  local row = cfg.call_line + 1
  local line = vim.api.nvim_buf_get_lines(buf, row - 1, row, true)[1]
  local call_col = line:find('subtract(', 1, true) - 1 -- a byte column, 0-based
  vim.api.nvim_win_set_cursor(0, { row, call_col + 2 })
  vim.lsp.buf.definition()
  wait('definition jumps', function()
    return vim.api.nvim_win_get_cursor(0)[1] ~= row
  end)
  local at = vim.api.nvim_win_get_cursor(0)
  out.definition = { row = at[1], col = at[2], file = vim.api.nvim_buf_get_name(0) }

  vim.api.nvim_win_set_cursor(0, { row, call_col + 2 })
  vim.lsp.buf.hover()
  local hover_win
  wait('hover shows', function()
    out.hover, hover_win = floating_text()
    return out.hover ~= nil
  end)
  vim.api.nvim_win_close(hover_win, true)

  -- A selection of `résumé` as Neovim sends it: its end is one byte into the final "é"
  -- (mark-indexed, inclusive: the last character's first byte, plus one unit). Only looked
  -- at: the action's data carries the selected text; nothing is run.
  local word = line:find('résumé', 1, true) - 1
  vim.lsp.buf.code_action({
    range = { start = { row, word }, ['end'] = { row, word + #'résum' } },
    filter = function(action)
      if action.title == 'Explain with agent' then
        out.explain_selection = action.data.arguments[1].selectionText
      end
      return false
    end,
  })
  wait('the actions for a selection ending on "é"', function()
    return out.explain_selection ~= nil
  end)

  -- "Ask agent to change this" on `subtract(7, 2)`: listed, resolved, run by Neovim itself.
  local close_col = line:find(')', call_col, true) - 1
  vim.lsp.buf.code_action({
    apply = true,
    range = { start = { row, call_col }, ['end'] = { row, close_col } },
    filter = function(action)
      return action.title == 'Ask agent to change this'
    end,
  })
  wait('a proposal waits for review', function()
    return next(agent.state.pending) ~= nil
  end)
  out.session = agent.state.session

  -- The user types while the proposal waits: a new first line, and in the accented line.
  vim.api.nvim_set_current_buf(buf)
  vim.cmd('normal! ggO# tapé à la main')
  row = cfg.call_line + 2
  line = vim.api.nvim_buf_get_lines(buf, row - 1, row, true)[1]
  local after = select(2, line:find('résumé', 1, true))
  vim.api.nvim_buf_set_text(buf, row - 1, after, row - 1, after, { '_bis' })

  vim.cmd('LspAgentReview')
  wait('the proposal is resolved', function()
    return #events_of('proposal_resolved') > 0
  end)
  -- A second proposal, for a file that is not open in Neovim.
  wait('a second proposal waits', function()
    return next(agent.state.pending) ~= nil
  end)
  vim.cmd('LspAgentReview')
  wait('the turn ends', function()
    return #events_of('turn_ended') > 0
  end)
  out.resolved = events_of('proposal_resolved')[1]
  out.turn_started = events_of('turn_started')[1]
  out.permission_decided = events_of('permission_decided')
  out.tool_results = events_of('tool_result')
  out.turn_ended = events_of('turn_ended')[1]
  -- Give the server's own write (after verifying the buffer) the time to happen, if any.
  -- (Not an error when they never agree: the test shows both texts.)
  vim.wait(5000, function()
    return read_file(calc) == buffer_text(buf)
  end, 20)
  out.buffer = buffer_text(buf)
  out.disk = read_file(calc)
  out.modified = vim.bo[buf].modified
  out.resolved_closed = events_of('proposal_resolved')[2]
  out.closed_file_disk = read_file(cfg.project .. '/' .. cfg.closed_file)
  out.modified_buffers = {}
  for _, info in ipairs(vim.fn.getbufinfo({ bufmodified = 1 })) do
    table.insert(out.modified_buffers, info.name)
  end

  -- A follow-up prompt in the same session, through the user command.
  vim.cmd('LspAgentPrompt Et maintenant ?')
  wait('the second turn ends', function()
    return #events_of('turn_ended') > 1
  end)
  out.second_turn = events_of('turn_ended')[2]

  -- :LspAgentFix on a diagnostic another source (say pyright) put on `subtract(7, 2)`.
  local pyright = vim.api.nvim_create_namespace('pyright-like')
  row = cfg.call_line + 1 -- 0-based, below the typed first line
  line = vim.api.nvim_buf_get_lines(buf, row, row + 1, true)[1]
  call_col = line:find('subtract(', 1, true) - 1
  vim.diagnostic.set(pyright, buf, { {
    lnum = row, col = call_col, end_lnum = row, end_col = call_col + #'subtract(7, 2)',
    severity = vim.diagnostic.severity.WARN, source = 'pyright', message = cfg.fix_message,
  } })
  vim.api.nvim_set_current_buf(buf)
  vim.api.nvim_win_set_cursor(0, { row + 1, 0 })
  vim.cmd('LspAgentFix')
  wait('the fix turn ends', function()
    return #events_of('turn_ended') > 2
  end)
  out.fix_turn = events_of('turn_ended')[3]

  local output = agent.state.outputs[agent.state.session]
  out.output = table.concat(vim.api.nvim_buf_get_lines(output, 0, -1, true), '\n')
  out.output_visible = vim.fn.bufwinid(output) ~= -1
  out.step = 'done'
end

local ok, err = xpcall(main, debug.traceback)
if not ok then
  out.error = tostring(err)
end
local messages = vim.api.nvim_exec2('messages', { output = true })
out.messages = messages.output
vim.fn.writefile({ vim.json.encode(out) }, cfg.results)
vim.cmd('qall!')
