# Build the MSI on Windows (NOT run by the project's CI, which is Linux; see installers/README.md).
# Needs: Python 3.11 with the project's dev extra (PyInstaller), Git, WiX Toolset 3.14 (heat, candle,
# light on PATH).   powershell -ExecutionPolicy Bypass -File installers\windows\build.ps1
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..\..")
$pkg = (python -c "import tomllib;print(tomllib.load(open('pyproject.toml','rb'))['project']['version'])").Trim()
$describe = (git describe --always --dirty --abbrev=7).Trim() -replace '[^A-Za-z0-9.]', '.'
$env:TANDEM_VERSION = "$pkg+g$describe"
New-Item -ItemType Directory -Force build\installers | Out-Null
Set-Content build\installers\VERSION $env:TANDEM_VERSION
python -m PyInstaller --noconfirm --distpath build\installers\dist --workpath build\installers\work installers\pyinstaller\tandem.spec
$dist = "build\installers\dist"
$wix = "build\installers\wix"
New-Item -ItemType Directory -Force $wix | Out-Null
# Harvest each one-folder bundle into a component group (tandem-agent.wxs refers to both). RECORDERDIR
# and AGENTDIR are versions\<Version>\tandem-recorder and ...\tandem-agent: the self-updater's layout.
heat dir "$dist\tandem-recorder" -cg RecorderFiles -dr RECORDERDIR -gg -sfrag -srd -sreg -var var.RecorderSource -out "$wix\recorder-files.wxs"
heat dir "$dist\tandem-agent" -cg AgentFiles -dr AGENTDIR -gg -sfrag -srd -sreg -var var.AgentSource -out "$wix\agent-files.wxs"
# The MSI ProductVersion is numeric only (major.minor.build). versions\<BundleVersion>\ carries the full
# stamp, as the .deb's and the release archive's: the updater compares that name with the releases.
$msiVersion = $pkg
candle -arch x64 -dWin64=yes "-dVersion=$msiVersion" "-dBundleVersion=$env:TANDEM_VERSION" "-dRecorderSource=$dist\tandem-recorder" "-dAgentSource=$dist\tandem-agent" `
  -out "$wix\" installers\windows\tandem-agent.wxs "$wix\recorder-files.wxs" "$wix\agent-files.wxs"
light -out "$dist\tandem-agent-$pkg.msi" "$wix\tandem-agent.wixobj" "$wix\recorder-files.wixobj" "$wix\agent-files.wixobj"
Write-Output "built $dist\tandem-agent-$pkg.msi ($env:TANDEM_VERSION)"
